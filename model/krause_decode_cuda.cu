// Fused CUDA decoding step of Krause attention: one new query per sequence against the keys of
// its ring buffer, top-K, softmax and the weighted sum of values in one kernel.
#include "model/krause_attention_cuda.h"

#include "model/attention.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>

namespace krause {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr unsigned kFull = 0xffffffffu;

template <typename scalar_t, typename out_t>
struct DecodeParams {
    // Rows of (b, h) sit at b * row_stride + h * D: (B, H, 1, D) tensors, or the q, k and v
    // thirds of one (B, 1, 3 * H * D) projection.
    const scalar_t* q;
    const scalar_t* k_new;   // the step's key and value, stored in slot position % S; or null
    const scalar_t* v_new;
    int64_t row_stride;
    scalar_t* keys;          // (B, H, S, D) ring buffer
    scalar_t* values;        // (B, H, S, D) ring buffer
    const float* log_sigma;           // (H) in fp32, or
    const scalar_t* log_sigma_typed;  // (H) in the ring's dtype (a model in that dtype)
    out_t* out;                       // (B, H, D)
    // The position being decoded, when it lives on the device (a replayable step): slots
    // 0 .. min(position + 1, S) - 1 hold keys. Null: n_valid says it.
    const int64_t* position;
    int BH, H, S, D;
    int n_valid;   // slots 0 .. n_valid - 1 hold keys, when position is null
    int capacity;  // score slots reserved in shared memory, >= the slots used
    int top_k;
};

__device__ __forceinline__ float warp_sum(float x) {
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(kFull, x, o);
    return x;
}

__device__ __forceinline__ float warp_max(float x) {
    for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(kFull, x, o));
    return x;
}

__device__ __forceinline__ int warp_count(bool x) { return __popc(__ballot_sync(kFull, x)); }

__device__ __forceinline__ unsigned warp_min(unsigned x) {
    for (int o = 16; o > 0; o >>= 1) x = min(x, __shfl_xor_sync(kFull, x, o));
    return x;
}

__device__ __forceinline__ unsigned warp_max(unsigned x) {
    for (int o = 16; o > 0; o >>= 1) x = max(x, __shfl_xor_sync(kFull, x, o));
    return x;
}

// Unsigned keys in the order of the fp32 scores (see krause_attention_cuda.cu).
__device__ __forceinline__ unsigned order_key(float s) {
    const unsigned b = __float_as_uint(s);
    return b ^ ((b & 0x80000000u) ? 0xffffffffu : 0x80000000u);
}

// One warp turns the n scores in w into softmax weights over the top_k largest (0 elsewhere),
// bisecting on the score bits for the K-th largest; among equal scores the lowest slot first.
__device__ void top_k_weights(float* w, int n, int top_k) {
    const int lane = threadIdx.x % 32;
    auto key = [&](int s) -> unsigned { return s < n ? order_key(w[s]) : 0u; };
    if (n > top_k) {
        unsigned lo = 0xffffffffu, hi = 0u;
        for (int s = lane; s < n; s += 32) {
            lo = min(lo, key(s));
            hi = max(hi, key(s));
        }
        lo = warp_min(lo);
        hi = warp_max(hi);
        unsigned t = hi;
        if (lo != hi) {
            const int top = 31 - __clz(lo ^ hi);
            t = hi & ~((2u << top) - 1u);
            for (int bit = top; bit >= 0; --bit) {
                const unsigned cand = t | (1u << bit);
                int count = 0;
                for (int s0 = 0; s0 < n; s0 += 32) count += warp_count(key(s0 + lane) >= cand);
                if (count >= top_k) {
                    t = cand;
                    if (count == top_k) break;
                }
            }
        }
        int above = 0;
        for (int s0 = 0; s0 < n; s0 += 32) above += warp_count(key(s0 + lane) > t);
        const int quota = top_k - above;
        int ties_seen = 0;
        for (int s0 = 0; s0 < n; s0 += 32) {
            const int s = s0 + lane;
            const unsigned u = key(s);
            const unsigned ties = __ballot_sync(kFull, u != 0u && u == t);
            const int rank = ties_seen + __popc(ties & ((1u << lane) - 1u));
            const bool keep = u > t || (u == t && u != 0u && rank < quota);
            ties_seen += __popc(ties);
            if (s < n && !keep) w[s] = -INFINITY;
        }
    }
    float mx = -INFINITY;
    for (int s = lane; s < n; s += 32) mx = fmaxf(mx, w[s]);
    mx = warp_max(mx);
    float sum = 0.f;
    for (int s = lane; s < n; s += 32) sum += expf(w[s] - mx);
    const float lse = mx + logf(warp_sum(sum));
    for (int s = lane; s < n; s += 32) w[s] = expf(w[s] - lse);
}

// Eight head dims of a row as floats: one 16-byte load for 16-bit types, two for fp32. The row
// offset must be a multiple of 8 elements (D % 8 == 0). Plain loads, not the read-only path:
// the step's own key row is stored by the same kernel.
template <typename scalar_t>
__device__ __forceinline__ void load8(const scalar_t* __restrict__ src, float (&x)[8]) {
    if constexpr (sizeof(scalar_t) == 2) {
        const uint4 raw = *reinterpret_cast<const uint4*>(src);
        const scalar_t* e = reinterpret_cast<const scalar_t*>(&raw);
#pragma unroll
        for (int i = 0; i < 8; ++i) x[i] = static_cast<float>(e[i]);
    } else {
        const float4 a = *reinterpret_cast<const float4*>(src);
        const float4 b = *(reinterpret_cast<const float4*>(src) + 1);
        x[0] = a.x, x[1] = a.y, x[2] = a.z, x[3] = a.w;
        x[4] = b.x, x[5] = b.y, x[6] = b.z, x[7] = b.w;
    }
}

// One warp per (b, h) query. It first stores the step's key and value in their ring slot (when
// given). Lanes own slots for the distances (a lane reads whole key rows, so a warp reads 32
// consecutive rows at once), the warp selects the top-K, then lanes own head dims for the
// weighted sum of values (a warp reads each value row once, coalesced).
template <typename scalar_t, typename out_t, bool kVector>
__global__ void __launch_bounds__(kThreads)
    krause_decode_kernel(const DecodeParams<scalar_t, out_t> p) {
    extern __shared__ float shared[];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int bh = blockIdx.x * kWarps + warp;
    if (bh >= p.BH) return;  // whole warps only: no block-wide barrier follows
    const int n_valid = p.position != nullptr ? min(static_cast<int>(*p.position) + 1, p.S)
                                              : p.n_valid;
    const int top_k = min(p.top_k, n_valid);
    float* q = shared + warp * (p.D + p.capacity);  // (D)
    float* w = q + p.D;                              // (n_valid) scores, then weights
    const int h = bh % p.H;
    const float log_sigma = p.log_sigma != nullptr ? p.log_sigma[h]
                                                   : static_cast<float>(p.log_sigma_typed[h]);
    const float coef = 0.5f * expf(-2.f * log_sigma);  // 1 / (2 sigma^2)
    scalar_t* keys = p.keys + static_cast<int64_t>(bh) * p.S * p.D;
    scalar_t* values = p.values + static_cast<int64_t>(bh) * p.S * p.D;
    const int64_t row = (bh / p.H) * p.row_stride + (bh % p.H) * p.D;

    if (p.k_new != nullptr) {
        const int64_t slot = (*p.position % p.S) * p.D;
        for (int d = lane; d < p.D; d += 32) {
            keys[slot + d] = p.k_new[row + d];
            values[slot + d] = p.v_new[row + d];
        }
    }
    for (int d = lane; d < p.D; d += 32) q[d] = static_cast<float>(p.q[row + d]);
    __syncwarp();  // orders the stores above before the reads below, within the warp
#pragma unroll 4
    for (int s = lane; s < n_valid; s += 32) {
        const scalar_t* key = keys + static_cast<int64_t>(s) * p.D;
        float acc = 0.f;
        // Blocks of 8 dims are summed apart before they join the running sum, which then
        // rounds an eighth as often.
        if constexpr (kVector) {
            for (int d = 0; d < p.D; d += 8) {
                float k8[8];
                load8(key + d, k8);
                float t[8];
#pragma unroll
                for (int i = 0; i < 8; ++i) t[i] = q[d + i] - k8[i];
                const float a = __fmaf_rn(t[1], t[1], __fmul_rn(t[0], t[0]));
                const float b = __fmaf_rn(t[3], t[3], __fmul_rn(t[2], t[2]));
                const float c = __fmaf_rn(t[5], t[5], __fmul_rn(t[4], t[4]));
                const float e = __fmaf_rn(t[7], t[7], __fmul_rn(t[6], t[6]));
                acc = __fadd_rn(acc, __fadd_rn(__fadd_rn(a, b), __fadd_rn(c, e)));
            }
        } else {
            for (int d = 0; d < p.D; ++d) {
                const float t = q[d] - static_cast<float>(key[d]);
                acc = __fmaf_rn(t, t, acc);
            }
        }
        w[s] = -acc * coef;
    }
    __syncwarp();
    top_k_weights(w, n_valid, top_k);
    __syncwarp();
    // Dropped slots weigh exactly 0 and values are finite, so every slot is summed: the loads
    // carry no branch and pipeline. (Listing the kept slots first reads 12% fewer bytes but
    // makes each load wait on an index: slower, measured.)
    out_t* out = p.out + static_cast<int64_t>(bh) * p.D;
    if (kVector && 32 % (p.D / 8) == 0) {
        // Lanes own 8 dims of every (32 / (D / 8))-th row: each load brings 16 bytes per lane and
        // a warp reads several rows at once; the lanes sharing dims then add their sums.
        const int chunks = p.D / 8, rows = 32 / chunks;
        const int r = lane / chunks, c = lane % chunks;
        float acc[8] = {};
#pragma unroll 4
        for (int s = r; s < n_valid; s += rows) {
            float v8[8];
            load8(values + static_cast<int64_t>(s) * p.D + c * 8, v8);
            const float ws = w[s];
#pragma unroll
            for (int i = 0; i < 8; ++i) acc[i] = __fmaf_rn(ws, v8[i], acc[i]);
        }
        for (int o = chunks; o < 32; o <<= 1) {
#pragma unroll
            for (int i = 0; i < 8; ++i) acc[i] += __shfl_xor_sync(kFull, acc[i], o);
        }
        if (r == 0) {
#pragma unroll
            for (int i = 0; i < 8; ++i) out[c * 8 + i] = static_cast<out_t>(acc[i]);
        }
        return;
    }
    for (int d0 = 0; d0 < p.D; d0 += 32) {
        const int d = min(d0 + lane, p.D - 1);
        float acc = 0.f;
#pragma unroll 8
        for (int s = 0; s < n_valid; ++s) {
            acc = __fmaf_rn(w[s], static_cast<float>(values[static_cast<int64_t>(s) * p.D + d]),
                            acc);
        }
        if (d0 + lane < p.D) out[d] = static_cast<out_t>(acc);
    }
}

template <typename scalar_t, typename out_t, bool kVector>
void launch_decode(const DecodeParams<scalar_t, out_t>& p, int grid, size_t bytes,
                   cudaStream_t stream) {
    // Raised per device only when a launch needs more than before: a step being captured into
    // a CUDA graph then makes no calls besides the launch.
    static std::array<std::atomic<size_t>, 64> allowed{};
    auto& mine = allowed[static_cast<size_t>(c10::cuda::current_device()) % allowed.size()];
    if (bytes > mine.load()) {
        C10_CUDA_CHECK(cudaFuncSetAttribute(krause_decode_kernel<scalar_t, out_t, kVector>,
                                            cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            static_cast<int>(bytes)));
        mine = bytes;
    }
    krause_decode_kernel<scalar_t, out_t, kVector><<<grid, kThreads, bytes, stream>>>(p);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace

namespace {

void check_decode_args(const char* name, const at::Tensor& q, const at::Tensor& ring_keys,
                       const at::Tensor& ring_values, const at::Tensor& log_sigma,
                       int64_t top_k) {
    TORCH_CHECK(q.dim() == 4 && q.size(2) == 1, name, ": q must be (B, H, 1, D), got ", q.sizes());
    TORCH_CHECK(ring_keys.dim() == 4 && ring_keys.size(0) == q.size(0) &&
                    ring_keys.size(1) == q.size(1) && ring_keys.size(3) == q.size(3) &&
                    ring_values.sizes() == ring_keys.sizes(),
                name, ": ring buffers must be (B, H, S, D) matching q ", q.sizes(), ", got ",
                ring_keys.sizes(), " and ", ring_values.sizes());
    TORCH_CHECK(top_k >= 1, name, ": top_k must be >= 1, got ", top_k);
    TORCH_CHECK(log_sigma.dim() == 1 && log_sigma.size(0) == q.size(1), name,
                ": log_sigma must be (H) with H = ", q.size(1));
    TORCH_CHECK(q.is_cuda() && ring_keys.device() == q.device() &&
                    ring_values.device() == q.device() && log_sigma.device() == q.device(),
                name, ": all tensors must be on one GPU");
    TORCH_CHECK(ring_values.scalar_type() == ring_keys.scalar_type(), name,
                ": ring keys and values dtypes differ");
}

// The launch behind both entry points. q, k_new, v_new: (B, H, 1, D) with unit dim stride,
// head stride D and one batch stride; k_new/v_new undefined when nothing is stored. The slot count
// is n_valid, or read from `position` on the device when that is defined. out_type: fp32, or
// the ring's dtype.
at::Tensor decode_launch(const at::Tensor& q, const at::Tensor& k_new, const at::Tensor& v_new,
                         const at::Tensor& ring_keys, const at::Tensor& ring_values,
                         int64_t n_valid, const at::Tensor& position, const at::Tensor& log_sigma,
                         int64_t top_k, at::ScalarType out_type) {
    const c10::cuda::CUDAGuard guard(q.device());
    const int64_t B = q.size(0), H = q.size(1), S = ring_keys.size(2), D = q.size(3);
    // log_sigma in the ring's dtype is read as it is (no conversion kernel per step).
    const bool typed = log_sigma.scalar_type() == ring_keys.scalar_type();
    const auto ls = (typed ? log_sigma : log_sigma.to(at::kFloat)).contiguous();  // (H)
    auto out = at::empty({B, H, 1, D}, q.options().dtype(out_type));  // (B, H, 1, D)
    if (B * H == 0 || D == 0) return out.zero_();

    const int64_t capacity = position.defined() ? S : n_valid;
    const size_t bytes = sizeof(float) * kWarps * (D + capacity);
    TORCH_CHECK(bytes <= at::cuda::getCurrentDeviceProperties()->sharedMemPerBlockOptin,
                "krause_decode_cuda: ", capacity, " slots of head size ", D,
                " exceed shared memory");
    const auto stream = at::cuda::getCurrentCUDAStream();
    auto fill = [&](auto tag, auto out_tag) {
        using scalar_t = decltype(tag);
        using out_t = decltype(out_tag);
        DecodeParams<scalar_t, out_t> p;
        p.q = q.data_ptr<scalar_t>();
        p.k_new = k_new.defined() ? k_new.data_ptr<scalar_t>() : nullptr;
        p.v_new = v_new.defined() ? v_new.data_ptr<scalar_t>() : nullptr;
        p.row_stride = q.stride(0);
        p.keys = ring_keys.data_ptr<scalar_t>();
        p.values = ring_values.data_ptr<scalar_t>();
        p.log_sigma = typed ? nullptr : ls.data_ptr<float>();
        p.log_sigma_typed = typed ? ls.data_ptr<scalar_t>() : nullptr;
        p.out = out.data_ptr<out_t>();
        p.position = position.defined() ? position.data_ptr<int64_t>() : nullptr;
        p.BH = static_cast<int>(B * H);
        p.H = static_cast<int>(H);
        p.S = static_cast<int>(S);
        p.D = static_cast<int>(D);
        p.n_valid = static_cast<int>(n_valid);
        p.capacity = static_cast<int>(capacity);
        p.top_k = static_cast<int>(std::min<int64_t>(top_k, S));
        const int grid = static_cast<int>((B * H + kWarps - 1) / kWarps);
        if (D % 8 == 0) {
            launch_decode<scalar_t, out_t, true>(p, grid, bytes, stream.stream());
        } else {
            launch_decode<scalar_t, out_t, false>(p, grid, bytes, stream.stream());
        }
    };
    auto with_out = [&](auto tag) {
        using scalar_t = decltype(tag);
        if (out_type == at::kFloat) {
            fill(tag, float{});
        } else {
            fill(tag, scalar_t{});
        }
    };
    switch (ring_keys.scalar_type()) {
        case at::kFloat: with_out(float{}); break;
        case at::kBFloat16: with_out(c10::BFloat16{}); break;
        case at::kHalf: with_out(c10::Half{}); break;
        default:
            TORCH_CHECK(false, "krause_decode_cuda: unsupported dtype ", ring_keys.scalar_type());
    }
    return out;
}

// Whether a (B, H, 1, D) step tensor can be read in place: unit dim stride, head stride D.
bool row_layout(const at::Tensor& t) { return t.stride(3) == 1 && t.stride(1) == t.size(3); }

}  // namespace

at::Tensor krause_decode_cuda(const at::Tensor& q, const at::Tensor& ring_keys,
                              const at::Tensor& ring_values, int64_t n_valid,
                              const at::Tensor& log_sigma, int64_t top_k) {
    check_decode_args("krause_decode_cuda", q, ring_keys, ring_values, log_sigma, top_k);
    TORCH_CHECK(n_valid >= 1 && n_valid <= ring_keys.size(2), "krause_decode_cuda: n_valid ",
                n_valid, " outside 1..", ring_keys.size(2));
    if (ring_keys.scalar_type() == at::kDouble) {  // the fp64 reference stays on ATen
        const auto scores = krause_scores(q, ring_keys.narrow(2, 0, n_valid), log_sigma);
        const auto all = at::ones({1}, scores.options().dtype(at::kBool));
        const auto w = at::softmax(keep_top_k(scores, all, top_k), -1);
        return at::matmul(w, ring_values.narrow(2, 0, n_valid).to(w.scalar_type()));
    }
    return decode_launch(q.to(ring_keys.scalar_type()).contiguous(), at::Tensor(), at::Tensor(),
                         ring_keys.contiguous(), ring_values.contiguous(), n_valid, at::Tensor(),
                         log_sigma, top_k, at::kFloat);
}

at::Tensor krause_decode_step_cuda(const at::Tensor& q, const at::Tensor& k_new,
                                   const at::Tensor& v_new, at::Tensor& ring_keys,
                                   at::Tensor& ring_values, const at::Tensor& position,
                                   const at::Tensor& log_sigma, int64_t top_k) {
    check_decode_args("krause_decode_step_cuda", q, ring_keys, ring_values, log_sigma, top_k);
    TORCH_CHECK(k_new.sizes() == q.sizes() && v_new.sizes() == q.sizes(),
                "krause_decode_step_cuda: k_new and v_new must match q ", q.sizes());
    TORCH_CHECK(position.numel() == 1 && position.scalar_type() == at::kLong &&
                    position.device() == q.device() && position.is_contiguous(),
                "krause_decode_step_cuda: position must be one int64 on the GPU of q");
    TORCH_CHECK(ring_keys.is_contiguous() && ring_values.is_contiguous(),
                "krause_decode_step_cuda: the ring buffers are written in place and must be "
                "contiguous");
    const auto type = ring_keys.scalar_type();
    if (type == at::kDouble) {  // the fp64 reference stays on ATen
        return krause_decode_step(q, k_new, v_new, ring_keys, ring_values, position, log_sigma,
                                  top_k);
    }
    // The three step tensors are read in place when they share one row layout (the q, k and v
    // thirds of a fused projection); otherwise from compact copies.
    const bool in_place = q.scalar_type() == type && k_new.scalar_type() == type &&
                          v_new.scalar_type() == type && row_layout(q) && row_layout(k_new) &&
                          row_layout(v_new) && k_new.stride(0) == q.stride(0) &&
                          v_new.stride(0) == q.stride(0);
    auto compact = [&](const at::Tensor& t) { return in_place ? t : t.to(type).contiguous(); };
    return decode_launch(compact(q), compact(k_new), compact(v_new), ring_keys, ring_values, 0,
                         position, log_sigma, top_k, type);
}

}  // namespace krause
