// Fused CUDA decoding step of Krause attention: one new query per sequence against the keys of
// its ring buffer, top-K, softmax and the weighted sum of values in one kernel. Ring buffers hold
// the model's dtype, or fp8 (e4m3) bytes that halve what a step reads.
#include "model/krause_attention_cuda.h"

#include "model/attention.h"
#include "model/cuda/decode_scores.cuh"
#include "model/cuda/decode_select.cuh"
#include "model/cuda/launch.h"
#include "model/cuda/warp.cuh"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

namespace krause {
namespace {

template <typename scalar_t, typename cache_t, typename out_t>
struct DecodeParams {
    // Rows of (b, h) sit at b * row_stride + h * D: (B, H, 1, D) tensors, or the q, k and v
    // thirds of one (B, 1, 3 * H * D) projection.
    const scalar_t* q;
    const scalar_t* k_new;   // the step's key and value, stored in slot position % S; or null
    const scalar_t* v_new;
    int64_t row_stride;
    cache_t* keys;           // (B, H, S, D) ring buffer
    cache_t* values;         // (B, H, S, D) ring buffer
    const float* log_sigma;           // (H) in fp32, or
    const scalar_t* log_sigma_typed;  // (H) in the step's dtype (a model in that dtype)
    out_t* out;                       // (B, H, D)
    // The squared norms of the ring's keys as stored, (B, H, S) fp32, or null. With them the
    // scores run on tensor cores where krause_decode_uses_key_norms says so, and a step that
    // stores a key stores its norm too.
    float* key_norms;
    // The position being decoded, when it lives on the device (a replayable step): slots
    // 0 .. min(position + 1, S) - 1 hold keys. Null: n_valid says it.
    const int64_t* position;
    int BH, H, S, D;
    int n_valid;   // slots 0 .. n_valid - 1 hold keys, when position is null
    int oldest;    // the slot of the oldest key, when position is null
    int capacity;  // score slots reserved in shared memory, >= the slots used
    int top_k;
};

// Words (4 bytes) of shared memory one group needs: the selection's (kSelectWords), q (D), the
// scores (capacity) and, for a group of several warps, each warp's partial weighted sum
// (warps x D); rounded up to 16 bytes, so that the histogram and q (D % 8 == 0) are read in
// 16-byte pieces.
__host__ __device__ constexpr int group_words(int D, int capacity, int warps) {
    return (kSelectWords + D + capacity + (warps > 1 ? warps * D : 0) + 3) / 4 * 4;
}

// One group of threads per (b, h) query: a warp (eight queries per block), or a whole block of
// kGroupWarps warps where the queries are too few to fill the GPU one warp each. The group first
// stores the step's key and value in their ring slot (when given). Threads own slots for the
// distances (a thread reads whole key rows, so a warp reads 32 consecutive rows at once), the
// group selects the top-K, then lanes own head dims for the weighted sum of values (a warp reads
// each of its value rows once, coalesced) and the warps of a group add their sums.
template <typename scalar_t, typename cache_t, typename out_t, int kGroupWarps, bool kVector,
          int kD, bool kMma>
__global__ void __launch_bounds__(kGroupWarps == 1 ? 256 : 32 * kGroupWarps)
    krause_decode_kernel(const DecodeParams<scalar_t, cache_t, out_t> p) {
    using Group = std::conditional_t<kGroupWarps == 1, WarpGroup, BlockGroup<kGroupWarps>>;
    constexpr int kGroupsPerBlock = kGroupWarps == 1 ? 8 : 1;
    extern __shared__ __align__(16) float shared[];  // read in 16-byte pieces (q, the histogram)
    __shared__ unsigned words[kGroupWarps];
    __shared__ float reals[kGroupWarps];
    const int g = threadIdx.x / Group::kSize;
    const int bh = blockIdx.x * kGroupsPerBlock + g;
    if (bh >= p.BH) return;  // whole groups only: no barrier spans two groups
    const Group group(words, reals);
    // The head size: fixed at compile time for the common sizes (kD > 0, equal to p.D), so the
    // loops over the dims unroll and their addresses are constants; else read from p.
    const int D = kD > 0 ? kD : p.D;
    const int r = group.rank(), warp = r / 32, lane = r % 32;
    const int n_valid = p.position != nullptr ? min(static_cast<int>(*p.position) + 1, p.S)
                                              : p.n_valid;
    // Once the ring has wrapped (position + 1 > S) the oldest key is in slot (position + 1) % S.
    const int oldest = p.position == nullptr              ? p.oldest
                       : *p.position + 1 > p.S ? static_cast<int>((*p.position + 1) % p.S)
                                               : 0;
    const int top_k = min(p.top_k, n_valid);
    float* group_shared = shared + g * group_words(D, p.capacity, kGroupWarps);
    unsigned* select_words = reinterpret_cast<unsigned*>(group_shared);  // (kSelectWords)
    float* q = group_shared + kSelectWords;  // (D)
    float* w = q + D;               // (n_valid) scores, then weights
    float* part = w + p.capacity;   // (kGroupWarps, D), several warps only
    const int h = bh % p.H;
    const float log_sigma = p.log_sigma != nullptr ? p.log_sigma[h]
                                                   : static_cast<float>(p.log_sigma_typed[h]);
    const float coef = 0.5f * expf(-2.f * log_sigma);  // 1 / (2 sigma^2)
    cache_t* keys = p.keys + static_cast<int64_t>(bh) * p.S * D;
    cache_t* values = p.values + static_cast<int64_t>(bh) * p.S * D;
    const int64_t row = (bh / p.H) * p.row_stride + (bh % p.H) * D;

    float* norms = p.key_norms;  // (S) of this (b, h), or null
    if (norms != nullptr) norms += static_cast<int64_t>(bh) * p.S;
    if (p.k_new != nullptr) {
        const int64_t slot = *p.position % p.S;
        for (int d = r; d < D; d += Group::kSize) {
            keys[slot * D + d] = to_cache<cache_t>(p.k_new[row + d]);
            values[slot * D + d] = to_cache<cache_t>(p.v_new[row + d]);
        }
        if (norms != nullptr && warp == 0) {  // the norm of the key as stored
            float part = 0.f;
            for (int d = lane; d < D; d += 32) {
                const float x = to_float(to_cache<cache_t>(p.k_new[row + d]));
                part = __fmaf_rn(x, x, part);
            }
            part = warp_sum(part);
            if (lane == 0) norms[slot] = part;
        }
    }
    for (int d = r; d < D; d += Group::kSize) q[d] = to_float(p.q[row + d]);
    group.sync();  // orders the stores above before the reads below, within the group
    if constexpr (kMma) {
        scores_on_tensor_cores<cache_t, kD, kGroupWarps>(keys, norms, q, coef, n_valid, warp, lane,
                                                         w);
    } else {
        scores_direct<cache_t, Group::kSize, kVector, kD>(keys, q, coef, n_valid, D, r, w);
    }
    group.sync();
    top_k_weights(group, w, n_valid, top_k, oldest, select_words);
    group.sync();
    // Dropped slots weigh exactly 0 and values are finite, so every slot is summed: the loads
    // carry no branch and pipeline. (Listing the kept slots first reads 12% fewer bytes but
    // makes each load wait on an index: slower, measured.)
    out_t* out = p.out + static_cast<int64_t>(bh) * D;
    if (kVector && 32 % (D / 8) == 0) {
        // Lanes own 8 dims of every (32 / (D / 8))-th row of their warp's rows: each load brings
        // 8 or 16 bytes per lane and a warp reads several rows at once; the lanes sharing dims
        // then add their sums.
        const int chunks = D / 8, rows = 32 / chunks;
        const int rr = lane / chunks, c = lane % chunks;
        float acc[8] = {};
        const int64_t value_step = static_cast<int64_t>(rows * kGroupWarps) * D;
        const cache_t* value = values + static_cast<int64_t>(warp * rows + rr) * D + c * 8;
#pragma unroll 4
        for (int s = warp * rows + rr; s < n_valid;
             s += rows * kGroupWarps, value += value_step) {
            float v8[8];
            load8(value, v8);
            const float ws = w[s];
#pragma unroll
            for (int i = 0; i < 8; ++i) acc[i] = __fmaf_rn(ws, v8[i], acc[i]);
        }
        for (int o = chunks; o < 32; o <<= 1) {
#pragma unroll
            for (int i = 0; i < 8; ++i) acc[i] += __shfl_xor_sync(kFull, acc[i], o);
        }
        if (rr == 0) {
#pragma unroll
            for (int i = 0; i < 8; ++i) {
                if constexpr (kGroupWarps == 1) {
                    out[c * 8 + i] = static_cast<out_t>(acc[i]);
                } else {
                    part[warp * D + c * 8 + i] = acc[i];
                }
            }
        }
    } else {
        for (int d0 = 0; d0 < D; d0 += 32) {
            const int d = min(d0 + lane, D - 1);
            float acc = 0.f;
#pragma unroll 8
            for (int s = warp; s < n_valid; s += kGroupWarps) {
                acc = __fmaf_rn(w[s], to_float(values[static_cast<int64_t>(s) * D + d]), acc);
            }
            if (d0 + lane < D) {
                if constexpr (kGroupWarps == 1) {
                    out[d] = static_cast<out_t>(acc);
                } else {
                    part[warp * D + d] = acc;
                }
            }
        }
    }
    if constexpr (kGroupWarps > 1) {
        __syncthreads();
        for (int d = r; d < D; d += Group::kSize) {
            float sum = part[d];
#pragma unroll
            for (int i = 1; i < kGroupWarps; ++i) sum += part[i * D + d];
            out[d] = static_cast<out_t>(sum);
        }
    }
}

template <typename scalar_t, typename cache_t, typename out_t, int kGroupWarps, bool kVector,
          int kD, bool kMma>
void launch_decode(const DecodeParams<scalar_t, cache_t, out_t>& p, cudaStream_t stream) {
    constexpr int kGroupsPerBlock = kGroupWarps == 1 ? 8 : 1;
    const int grid = (p.BH + kGroupsPerBlock - 1) / kGroupsPerBlock;
    const size_t bytes =
        sizeof(float) * kGroupsPerBlock * group_words(p.D, p.capacity, kGroupWarps);
    TORCH_CHECK(bytes <= at::cuda::getCurrentDeviceProperties()->sharedMemPerBlockOptin,
                "krause_decode_cuda: ", p.capacity, " slots of head size ", p.D,
                " exceed shared memory");
    auto* kernel = krause_decode_kernel<scalar_t, cache_t, out_t, kGroupWarps, kVector, kD, kMma>;
    fused::prepare_launch(reinterpret_cast<const void*>(kernel), bytes);
    kernel<<<grid, kGroupsPerBlock * 32 * kGroupWarps, bytes, stream>>>(p);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// Warps per query: 1 while the queries alone give every multiprocessor 32 warps or more (the
// bandwidth-bound regime of large batches), else the fewest of 2, 4 or 8 that do, and never
// more than the window has 32-slot rows.
int group_warps_for(int64_t queries, int64_t slots) {
    const int64_t wanted = 32LL * at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
    int warps = 1;
    while (warps < 8 && queries * warps < wanted && 32LL * warps < slots) warps *= 2;
    return warps;
}

// tensor_cores: the scores on tensor cores (krause_decode_uses_key_norms, with key norms given).
template <typename scalar_t, typename cache_t, typename out_t>
void dispatch_decode(const DecodeParams<scalar_t, cache_t, out_t>& p, int group_warps,
                     bool tensor_cores, cudaStream_t stream) {
    // kVector: head dims in blocks of 8; kD: the head size when fixed at compile time (0: any);
    // kMma: the scores on tensor cores.
    auto go = [&](auto vector, auto dims, auto mma) {
        auto launch = [&](auto warps) {
            launch_decode<scalar_t, cache_t, out_t, decltype(warps)::value,
                          decltype(vector)::value, decltype(dims)::value, decltype(mma)::value>(
                p, stream);
        };
        switch (group_warps) {
            case 1: return launch(std::integral_constant<int, 1>{});
            case 2: return launch(std::integral_constant<int, 2>{});
            case 4: return launch(std::integral_constant<int, 4>{});
            case 8: return launch(std::integral_constant<int, 8>{});
            default: TORCH_CHECK(false, "krause_decode_cuda: warps per query must be 1, 2, 4 or 8");
        }
    };
    using Any = std::integral_constant<int, 0>;
    using No = std::false_type;
    using D64 = std::integral_constant<int, 64>;
    if (p.D == 32) {
        go(std::true_type{}, std::integral_constant<int, 32>{}, No{});
    } else if (p.D == 64) {
        // Instantiated for the ring types of kMmaRing, and only the step (which returns the
        // step's dtype) passes key norms.
        if constexpr (kMmaRing<cache_t> && std::is_same_v<out_t, scalar_t>) {
            if (tensor_cores) return go(std::true_type{}, D64{}, std::true_type{});
        }
        go(std::true_type{}, D64{}, No{});
    } else if (p.D % 8 == 0) {
        go(std::true_type{}, Any{}, No{});
    } else {
        go(std::false_type{}, Any{}, No{});
    }
}

}  // namespace

namespace {

void check_decode_args(const char* name, const at::Tensor& q, const at::Tensor& ring_keys,
                       const at::Tensor& ring_values, const at::Tensor& log_sigma,
                       int64_t top_k, int decode_warps) {
    TORCH_CHECK(q.dim() == 4 && q.size(2) == 1, name, ": q must be (B, H, 1, D), got ", q.sizes());
    TORCH_CHECK(valid_decode_warps(decode_warps), name,
                ": decode warps must be 0 (by batch), 1, 2, 4 or 8, got ", decode_warps);
    TORCH_CHECK(ring_keys.scalar_type() != at::kDouble, name,
                ": fp64 decodes on the ATen path (krause_decode_ring, krause_decode_step)");
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

// The dtype the step's q, k and v are read in for a ring of `ring` elements: the ring's own, or
// bf16 for fp8 rings.
at::ScalarType step_type(at::ScalarType ring) { return ring == at::kByte ? at::kBFloat16 : ring; }

// The launch behind both entry points. q, k_new, v_new: (B, H, 1, D) in step_type(ring dtype)
// with unit dim stride, head stride D and one batch stride; k_new/v_new undefined when nothing is
// stored. The slot count and the oldest key's slot are n_valid and oldest, or follow from
// `position` on the device when that is defined.
// out_type: fp32, or the step's dtype. key_norms: (B, H, S) fp32 or undefined (DecodeParams).
at::Tensor decode_launch(const at::Tensor& q, const at::Tensor& k_new, const at::Tensor& v_new,
                         const at::Tensor& ring_keys, const at::Tensor& ring_values,
                         int64_t n_valid, int64_t oldest, const at::Tensor& position,
                         const at::Tensor& log_sigma, int64_t top_k, at::ScalarType out_type,
                         int decode_warps, const at::Tensor& key_norms) {
    const c10::cuda::CUDAGuard guard(q.device());
    const int64_t B = q.size(0), H = q.size(1), S = ring_keys.size(2), D = q.size(3);
    // log_sigma in the step's dtype is read as it is (no conversion kernel per step).
    const bool typed = log_sigma.scalar_type() == q.scalar_type();
    const auto ls = (typed ? log_sigma : log_sigma.to(at::kFloat)).contiguous();  // (H)
    auto out = at::empty({B, H, 1, D}, q.options().dtype(out_type));  // (B, H, 1, D)
    if (B * H == 0 || D == 0) return out.zero_();

    const int64_t capacity = position.defined() ? S : n_valid;
    // By the ring's size, not the slots in use: both entry points launch the same kernel.
    const int group_warps = decode_warps > 0 ? decode_warps : group_warps_for(B * H, S);
    const bool tensor_cores =
        key_norms.defined() && krause_decode_uses_key_norms(ring_keys.scalar_type(), D);
    const auto stream = at::cuda::getCurrentCUDAStream();
    auto fill = [&](auto step_tag, auto cache_tag, auto out_tag) {
        using scalar_t = decltype(step_tag);
        using cache_t = decltype(cache_tag);
        using out_t = decltype(out_tag);
        DecodeParams<scalar_t, cache_t, out_t> p;
        p.q = q.data_ptr<scalar_t>();
        p.k_new = k_new.defined() ? k_new.data_ptr<scalar_t>() : nullptr;
        p.v_new = v_new.defined() ? v_new.data_ptr<scalar_t>() : nullptr;
        p.row_stride = q.stride(0);
        if constexpr (std::is_same_v<cache_t, E4M3>) {
            p.keys = reinterpret_cast<E4M3*>(ring_keys.data_ptr<uint8_t>());
            p.values = reinterpret_cast<E4M3*>(ring_values.data_ptr<uint8_t>());
        } else {
            p.keys = ring_keys.data_ptr<cache_t>();
            p.values = ring_values.data_ptr<cache_t>();
        }
        p.log_sigma = typed ? nullptr : ls.data_ptr<float>();
        p.log_sigma_typed = typed ? ls.data_ptr<scalar_t>() : nullptr;
        p.out = out.data_ptr<out_t>();
        p.key_norms = key_norms.defined() ? key_norms.data_ptr<float>() : nullptr;
        p.position = position.defined() ? position.data_ptr<int64_t>() : nullptr;
        p.BH = static_cast<int>(B * H);
        p.H = static_cast<int>(H);
        p.S = static_cast<int>(S);
        p.D = static_cast<int>(D);
        p.n_valid = static_cast<int>(n_valid);
        p.oldest = static_cast<int>(oldest);
        p.capacity = static_cast<int>(capacity);
        p.top_k = static_cast<int>(std::min<int64_t>(top_k, S));
        dispatch_decode(p, group_warps, tensor_cores, stream.stream());
    };
    auto with_out = [&](auto step_tag, auto cache_tag) {
        if (out_type == at::kFloat) {
            fill(step_tag, cache_tag, float{});
        } else {
            fill(step_tag, cache_tag, step_tag);
        }
    };
    switch (ring_keys.scalar_type()) {
        case at::kFloat: with_out(float{}, float{}); break;
        case at::kBFloat16: with_out(c10::BFloat16{}, c10::BFloat16{}); break;
        case at::kHalf: with_out(c10::Half{}, c10::Half{}); break;
        case at::kByte: with_out(c10::BFloat16{}, E4M3{}); break;
        default:
            TORCH_CHECK(false, "krause_decode_cuda: unsupported dtype ", ring_keys.scalar_type());
    }
    return out;
}

// Whether a (B, H, 1, D) step tensor can be read in place: unit dim stride, head stride D.
bool row_layout(const at::Tensor& t) { return t.stride(3) == 1 && t.stride(1) == t.size(3); }

}  // namespace

bool krause_decode_uses_key_norms(at::ScalarType ring, int64_t head_dim) {
    // The one rule for the tensor-core scores (decode_scores.cuh says why); the dispatch reads it.
    return (ring == at::kBFloat16 || ring == at::kHalf) && head_dim == 64 &&
           at::cuda::getCurrentDeviceProperties()->major >= 8;
}

at::Tensor krause_decode_cuda(const at::Tensor& q, const at::Tensor& ring_keys,
                              const at::Tensor& ring_values, int64_t position,
                              const at::Tensor& log_sigma, int64_t top_k, int decode_warps) {
    check_decode_args("krause_decode_cuda", q, ring_keys, ring_values, log_sigma, top_k,
                      decode_warps);
    TORCH_CHECK(position >= 0, "krause_decode_cuda: position must be >= 0, got ", position);
    const int64_t S = ring_keys.size(2);
    const int64_t n_valid = std::min(position + 1, S);
    const int64_t oldest = position + 1 > S ? (position + 1) % S : 0;
    return decode_launch(q.to(step_type(ring_keys.scalar_type())).contiguous(), at::Tensor(),
                         at::Tensor(), ring_keys.contiguous(), ring_values.contiguous(), n_valid,
                         oldest, at::Tensor(), log_sigma, top_k, at::kFloat, decode_warps,
                         at::Tensor());
}

at::Tensor krause_decode_step_cuda(const at::Tensor& q, const at::Tensor& k_new,
                                   const at::Tensor& v_new, at::Tensor& ring_keys,
                                   at::Tensor& ring_values, const at::Tensor& position,
                                   const at::Tensor& log_sigma, int64_t top_k,
                                   int decode_warps, const at::Tensor& key_norms) {
    check_decode_args("krause_decode_step_cuda", q, ring_keys, ring_values, log_sigma, top_k,
                      decode_warps);
    TORCH_CHECK(k_new.sizes() == q.sizes() && v_new.sizes() == q.sizes(),
                "krause_decode_step_cuda: k_new and v_new must match q ", q.sizes());
    TORCH_CHECK(position.numel() == 1 && position.scalar_type() == at::kLong &&
                    position.device() == q.device() && position.is_contiguous(),
                "krause_decode_step_cuda: position must be one int64 on the GPU of q");
    TORCH_CHECK(ring_keys.is_contiguous() && ring_values.is_contiguous(),
                "krause_decode_step_cuda: the ring buffers are written in place and must be "
                "contiguous");
    TORCH_CHECK(!key_norms.defined() ||
                    (key_norms.scalar_type() == at::kFloat && key_norms.is_contiguous() &&
                     key_norms.device() == q.device() &&
                     key_norms.sizes() == ring_keys.sizes().slice(0, 3)),
                "krause_decode_step_cuda: key norms must be contiguous fp32 (B, H, S) on the GPU "
                "of the rings ", ring_keys.sizes());
    const auto type = step_type(ring_keys.scalar_type());
    // The three step tensors are read in place when they share one row layout (the q, k and v
    // thirds of a fused projection); otherwise from compact copies.
    const bool in_place = q.scalar_type() == type && k_new.scalar_type() == type &&
                          v_new.scalar_type() == type && row_layout(q) && row_layout(k_new) &&
                          row_layout(v_new) && k_new.stride(0) == q.stride(0) &&
                          v_new.stride(0) == q.stride(0);
    auto compact = [&](const at::Tensor& t) { return in_place ? t : t.to(type).contiguous(); };
    return decode_launch(compact(q), compact(k_new), compact(v_new), ring_keys, ring_values, 0, 0,
                         position, log_sigma, top_k, type, decode_warps, key_norms);
}

}  // namespace krause
