// Fused CUDA decoding step of Krause attention: one new query per sequence against the keys of
// its ring buffer, top-K, softmax and the weighted sum of values in one kernel.
#include "model/krause_attention_cuda.h"

#include "model/attention.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>
#include <cstdint>

namespace krause {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr unsigned kFull = 0xffffffffu;

template <typename scalar_t>
struct DecodeParams {
    const float* q;          // (B, H, D)
    const scalar_t* keys;    // (B, H, S, D) ring buffer
    const scalar_t* values;  // (B, H, S, D) ring buffer
    const float* log_sigma;  // (H)
    float* out;              // (B, H, D)
    int H, S, D;
    int n_valid;  // slots 0 .. n_valid - 1 hold keys
    int top_k;    // <= n_valid
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

// One block per (b, h): warps compute distances (lanes over D), warp 0 selects, then each warp
// sums the weighted values of its slots and the block adds the warps' partial outputs.
template <typename scalar_t>
__global__ void __launch_bounds__(kThreads) krause_decode_kernel(const DecodeParams<scalar_t> p) {
    extern __shared__ float shared[];
    float* q = shared;                 // (D)
    float* w = q + p.D;                // (n_valid) scores, then weights
    float* partial = w + p.n_valid;    // (kWarps, D)
    const int bh = blockIdx.x;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const float coef = 0.5f * expf(-2.f * p.log_sigma[bh % p.H]);  // 1 / (2 sigma^2)
    const scalar_t* keys = p.keys + static_cast<int64_t>(bh) * p.S * p.D;
    const scalar_t* values = p.values + static_cast<int64_t>(bh) * p.S * p.D;

    for (int d = threadIdx.x; d < p.D; d += kThreads) {
        q[d] = p.q[static_cast<int64_t>(bh) * p.D + d];
    }
    for (int x = threadIdx.x; x < kWarps * p.D; x += kThreads) partial[x] = 0.f;
    __syncthreads();
    for (int s = warp; s < p.n_valid; s += kWarps) {
        float acc = 0.f;
        for (int d = lane; d < p.D; d += 32) {
            const float t = q[d] - static_cast<float>(keys[static_cast<int64_t>(s) * p.D + d]);
            acc = __fmaf_rn(t, t, acc);
        }
        acc = warp_sum(acc);
        if (lane == 0) w[s] = -acc * coef;
    }
    __syncthreads();
    if (warp == 0) top_k_weights(w, p.n_valid, p.top_k);
    __syncthreads();
    float* mine = partial + warp * p.D;
    for (int s = warp; s < p.n_valid; s += kWarps) {
        const float ws = w[s];
        if (ws == 0.f) continue;  // dropped, or a weight that underflowed
        for (int d = lane; d < p.D; d += 32) {
            mine[d] = __fmaf_rn(ws, static_cast<float>(values[static_cast<int64_t>(s) * p.D + d]),
                                mine[d]);
        }
    }
    __syncthreads();
    for (int d = threadIdx.x; d < p.D; d += kThreads) {
        float acc = 0.f;
        for (int x = 0; x < kWarps; ++x) acc += partial[x * p.D + d];
        p.out[static_cast<int64_t>(bh) * p.D + d] = acc;
    }
}

template <typename scalar_t>
void launch_decode(const DecodeParams<scalar_t>& p, int grid, size_t bytes, cudaStream_t stream) {
    C10_CUDA_CHECK(cudaFuncSetAttribute(krause_decode_kernel<scalar_t>,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(bytes)));
    krause_decode_kernel<scalar_t><<<grid, kThreads, bytes, stream>>>(p);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace

at::Tensor krause_decode_cuda(const at::Tensor& q, const at::Tensor& ring_keys,
                              const at::Tensor& ring_values, int64_t n_valid,
                              const at::Tensor& log_sigma, int64_t top_k) {
    TORCH_CHECK(q.dim() == 4 && q.size(2) == 1, "krause_decode_cuda: q must be (B, H, 1, D), got ",
                q.sizes());
    TORCH_CHECK(ring_keys.dim() == 4 && ring_keys.size(0) == q.size(0) &&
                    ring_keys.size(1) == q.size(1) && ring_keys.size(3) == q.size(3) &&
                    ring_values.sizes() == ring_keys.sizes(),
                "krause_decode_cuda: ring buffers must be (B, H, S, D) matching q ", q.sizes(),
                ", got ", ring_keys.sizes(), " and ", ring_values.sizes());
    TORCH_CHECK(n_valid >= 1 && n_valid <= ring_keys.size(2), "krause_decode_cuda: n_valid ",
                n_valid, " outside 1..", ring_keys.size(2));
    TORCH_CHECK(top_k >= 1, "krause_decode_cuda: top_k must be >= 1, got ", top_k);
    TORCH_CHECK(log_sigma.dim() == 1 && log_sigma.size(0) == q.size(1),
                "krause_decode_cuda: log_sigma must be (H) with H = ", q.size(1));
    TORCH_CHECK(q.is_cuda() && ring_keys.device() == q.device() &&
                    ring_values.device() == q.device() && log_sigma.device() == q.device(),
                "krause_decode_cuda: all tensors must be on one GPU");
    TORCH_CHECK(ring_values.scalar_type() == ring_keys.scalar_type(),
                "krause_decode_cuda: ring keys and values dtypes differ");
    if (ring_keys.scalar_type() == at::kDouble) {  // the fp64 reference stays on ATen
        const auto scores = krause_scores(q, ring_keys.narrow(2, 0, n_valid), log_sigma);
        const auto all = at::ones({1}, scores.options().dtype(at::kBool));
        const auto w = at::softmax(keep_top_k(scores, all, top_k), -1);
        return at::matmul(w, ring_values.narrow(2, 0, n_valid).to(w.scalar_type()));
    }
    const c10::cuda::CUDAGuard guard(q.device());
    const int64_t B = q.size(0), H = q.size(1), S = ring_keys.size(2), D = q.size(3);
    const auto qf = q.to(at::kFloat).contiguous();            // (B, H, 1, D)
    const auto keys = ring_keys.contiguous();                 // (B, H, S, D)
    const auto values = ring_values.contiguous();             // (B, H, S, D)
    const auto ls = log_sigma.to(at::kFloat).contiguous();    // (H)
    auto out = at::empty({B, H, 1, D}, qf.options());         // (B, H, 1, D)
    if (B * H == 0 || D == 0) return out.zero_();

    const size_t bytes = sizeof(float) * (D + n_valid + kWarps * D);
    TORCH_CHECK(bytes <= at::cuda::getCurrentDeviceProperties()->sharedMemPerBlockOptin,
                "krause_decode_cuda: ", n_valid, " slots of head size ", D,
                " exceed shared memory");
    const auto stream = at::cuda::getCurrentCUDAStream();
    auto fill = [&](auto tag) {
        using scalar_t = decltype(tag);
        DecodeParams<scalar_t> p;
        p.q = qf.data_ptr<float>();
        p.keys = keys.data_ptr<scalar_t>();
        p.values = values.data_ptr<scalar_t>();
        p.log_sigma = ls.data_ptr<float>();
        p.out = out.data_ptr<float>();
        p.H = static_cast<int>(H);
        p.S = static_cast<int>(S);
        p.D = static_cast<int>(D);
        p.n_valid = static_cast<int>(n_valid);
        p.top_k = static_cast<int>(std::min(top_k, n_valid));
        launch_decode(p, static_cast<int>(B * H), bytes, stream.stream());
    };
    switch (keys.scalar_type()) {
        case at::kFloat: fill(float{}); break;
        case at::kBFloat16: fill(c10::BFloat16{}); break;
        case at::kHalf: fill(c10::Half{}); break;
        default: TORCH_CHECK(false, "krause_decode_cuda: unsupported dtype ", keys.scalar_type());
    }
    return out;
}

}  // namespace krause
