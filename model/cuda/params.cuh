// What the fused Krause attention kernels take (ForwardParams, BackwardParams), the host-side
// launchers that forward.cu, backward.cu and backward_mma.cu define, and the launch helpers they
// share. Included by .cu files only.
#pragma once

#include "model/cuda/launch.h"
#include "model/cuda/select.cuh"
#include "model/cuda/tiles.cuh"

#include <c10/cuda/CUDAException.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <type_traits>

namespace krause::fused {

template <typename scalar_t>
struct ForwardParams {
    const scalar_t* q;       // (B, H, T, D)
    const scalar_t* k;       // (B, H, T, D)
    const scalar_t* v;       // (B, H, T, D)
    const float* log_sigma;  // (H)
    scalar_t* out;           // (B, H, T, D)
    float* out_f32;          // (B, H, T, D) unrounded output for the backward's delta, or null
    uint2* threshold;        // (B, H, T) the kept keys as (tau, r_last); null when inferring
    float2* lse;             // (B, H, T) log-sum-exp of the kept scores as (hi, lo); null likewise
    float* scores;           // (grid, n_cols, kFwdPitch) when the score tile outgrows shared memory
    const float* q_norm;     // (B, H, T) squared norms of the rows of q and k (launch_row_norms),
    const float* k_norm;     // read by the tensor-core kernel; null for the CUDA-core one
    Layout lq, lk, lv, lo;   // of q, k, v and of out / out_f32
    int B, H, T, D, W, K;
    bool wide;     // rows of q, k, v 16-byte aligned and D % 8 == 0: 16-byte copies (tiles.cuh)
    int n_qtiles;  // ceil(T / kFwdRows) query tiles per (b, h)
    int n_tiles;   // B * H * n_qtiles
    int n_cols;    // keys a query tile spans, kFwdRows + W - 1, rounded up to whole chunks
};

template <typename scalar_t>
struct BackwardParams {
    const scalar_t* q;       // (B, H, T, D)
    const scalar_t* k;       // (B, H, T, D)
    const scalar_t* v;       // (B, H, T, D)
    const float* out;        // (B, H, T, D) the forward output in fp32
    const scalar_t* dout;    // (B, H, T, D)
    const float* log_sigma;  // (H)
    const uint2* threshold;  // (B, H, T) (tau, r_last) of the forward (RowStats)
    const float2* lse;       // (B, H, T) (hi, lo)
    float* delta;            // (B, H, T) dO_i . O_i, by the CUDA-core query pass for its key pass
    // (B, H, T) per query (lse hi, lse lo times log2 e, delta, |q|^2): what the tensor-core query
    // pass hands its key pass, one 16-byte record instead of delta, lse and the norm apart
    float4* query_stats;
    scalar_t* dq;            // (B, H, T, D)
    scalar_t* dk;            // (B, H, T, D)
    scalar_t* dv;            // (B, H, T, D)
    double* dlog_sigma;      // (B, H, n_qtiles) one partial sum per query tile
    float* dlog_sigma_sum;   // (H) their sums per head
    const float* q_norm;     // (B, H, T) the forward's row norms (tensor-core passes only)
    const float* k_norm;     // (B, H, T)
    Layout lq, lk, lv;       // of q, k, v
    Layout lo, lg, ld;       // of out, of dout, and of dq, dk, dv
    int B, H, T, D, W;
    bool wide;             // rows of q, k, v and dout 16-byte aligned and D % 8 == 0
    int n_qtiles, n_tiles, n_cols;
};

// Tile `tile` of a backward grid: its (b, h), first row (query or key) and the head's
// 1 / (2 sigma^2).
struct RowTile {
    int bh, row0;
    float coef;
};

template <typename scalar_t>
__device__ __forceinline__ RowTile backward_tile(const BackwardParams<scalar_t>& p, int tile) {
    const int bh = tile / p.n_qtiles;
    return {bh, (tile % p.n_qtiles) * kTile, 0.5f * expf(-2.f * p.log_sigma[bh % p.H])};
}

// Whether the forward kept score s in window slot r of the query with threshold th (RowStats),
// for a slot that holds a key: the caller checks 0 <= r < W and that the key is not before
// position 0 (such slots read zero rows, whose scores are finite and could pass the test).
__device__ __forceinline__ bool kept(float s, int r, uint2 th) {
    return is_kept(score_key(s), r, th.x, static_cast<int>(th.y));
}

// The same test on the score's bits b: score_key(s) = ~b is above tau exactly when b is below
// ~tau, so a caller that forms not_tau = ~tau once per query complements no score.
__device__ __forceinline__ bool kept_bits(float s, int r, unsigned not_tau, int r_last) {
    const unsigned b = __float_as_uint(s);
    return b < not_tau || (b == not_tau && r <= r_last);
}

// The squared norms of the rows of q and k, (B, H, T) each, for the tensor-core kernels: formed
// once per row by one kernel (forward.cu), so that the forward and both backward passes read the
// same bits. q and k are bf16 with layouts lq and lk, n_bh = B * H; wide: every row of q and k
// 16-byte aligned and D % 8 == 0 (16-byte loads).
void launch_row_norms(const c10::BFloat16* q, const c10::BFloat16* k, Layout lq, Layout lk,
                      bool wide, int n_bh, int H, int T, int D, int kd, float* q_norm,
                      float* k_norm, cudaStream_t stream);

int padded_head_dim(int64_t D);
// Dynamic shared memory of the forward kernel for padded head size kd (CUDA-core or tensor-core
// form) over n_cols keys, with or without the score tile.
size_t forward_shared_bytes(int kd, int n_cols, bool scores_in_shared, bool mma);

// mma: bf16 scores on tensor cores (krause_forward_mma_kernel). Defined for float, BFloat16, Half.
template <typename scalar_t>
void launch_forward(const ForwardParams<scalar_t>& p, int kd, bool mma, bool in_shared, int grid,
                    size_t bytes, cudaStream_t stream);

// mma: the forward ran on tensor cores (bf16 only); up to head size 64 the backward passes then
// run on tensor cores too, recomputing the forward's distances bit for bit. At 128 (whose
// fragments would not fit the registers) the CUDA-core passes run, with distances that differ
// from the forward's by float rounding, which the tests allow for.
template <typename scalar_t>
void launch_backward(const BackwardParams<scalar_t>& p, int kd, bool mma, cudaStream_t stream);

// The tensor-core backward passes (backward_mma.cu) for head sizes 32 and 64.
void launch_backward_mma(const BackwardParams<c10::BFloat16>& p, int kd, cudaStream_t stream);

// Launches the kernel on the stream and checks the launch. early: the kernel follows the rules of
// wait_for_previous_grid (tiles.cuh), so it may start while the kernel before it finishes, where
// its code was built for compute capability 9.0 or newer. Otherwise it starts after.
template <typename Params>
void launch(void (*kernel)(Params), dim3 grid, int threads, size_t bytes, cudaStream_t stream,
            const Params& p, bool early = false) {
    const bool overlapped = prepare_launch(reinterpret_cast<const void*>(kernel), bytes) && early;
#if CUDART_VERSION >= 11080
    cudaLaunchAttribute overlap{};
    overlap.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    overlap.val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t config{};
    config.gridDim = grid;
    config.blockDim = dim3(threads);
    config.dynamicSmemBytes = bytes;
    config.stream = stream;
    config.attrs = overlapped ? &overlap : nullptr;
    config.numAttrs = overlapped ? 1 : 0;
    C10_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, p));
#else
    (void)overlapped;  // before CUDA 11.8, no early launches
    kernel<<<grid, threads, bytes, stream>>>(p);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
#endif
}

// Calls f with std::integral_constant<int, kD> for a padded head size kd (32, 64 or 128).
template <typename F>
void dispatch_head_dim(int kd, F&& f) {
    switch (kd) {
        case 32: f(std::integral_constant<int, 32>{}); break;
        case 64: f(std::integral_constant<int, 64>{}); break;
        default: f(std::integral_constant<int, 128>{}); break;
    }
}


}  // namespace krause::fused
