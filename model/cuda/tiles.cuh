// The building blocks of the fused Krause attention kernels (included by their .cu files only):
// block shapes, where rows of a (B, H, T, D) operand lie, loads of row chunks into shared memory,
// the per-pair products on CUDA cores and the bf16 fragments for tensor cores (mma.cuh multiplies).
#pragma once

#include "model/cuda/band.h"
#include "model/cuda/mma.cuh"
#include "model/cuda/warp.cuh"

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <cuda_bf16.h>

#include <cstdint>
#include <type_traits>

namespace krause::fused {

// A block owns a tile of rows, queries (forward, dq pass) or keys (dk/dv pass), and streams the
// other side in chunks of kTile rows through shared memory. Its threads form a 16-wide grid:
// thread (tr, tc) owns tile rows tr*4 .. tr*4+3 and chunk rows tc + 16*b, so the 16 chunk rows a
// warp reads at once are consecutive, which the kD + 4 row pitch keeps free of bank conflicts.
// Backward blocks own 64 rows (256 threads); forward blocks own 32 queries (128 threads), so that
// four fit a multiprocessor beside their score tiles.
constexpr int kTile = 64;
constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kPitchS = kTile + 4;  // floats per row of the backward's probability and ds tiles
constexpr int kFwdRows = 32;
constexpr int kFwdThreads = 16 * kFwdRows / 4;
constexpr int kFwdWarps = kFwdThreads / 32;
constexpr int kFwdPitch = kFwdRows + 4;  // floats per row of the forward's score tile

template <typename T>
__device__ __forceinline__ float to_float(T x) {
    return static_cast<float>(x);
}

// Where the rows of a (B, H, T, D) operand lie: element (b, h, t, d) at offset
// b * Layout::b + h * Layout::h + t * Layout::t + d.
// Heads may be interleaved with time, as in the (B, T, 3, H, D) output of one fused q/k/v
// projection, so the kernels read and write heads in place instead of through transposed copies.
struct Layout {
    int64_t b, h, t;
    __device__ __forceinline__ int64_t slice_of(int image, int head) const {
        return static_cast<int64_t>(image) * b + static_cast<int64_t>(head) * h;
    }
    __device__ __forceinline__ int64_t slice(int bh, int H) const {
        return slice_of(bh / H, bh % H);
    }
    __device__ __forceinline__ int64_t at_of(int image, int head, int i) const {
        return slice_of(image, head) + static_cast<int64_t>(i) * t;
    }
    __device__ __forceinline__ int64_t at(int bh, int H, int i) const {
        return at_of(bh / H, bh % H, i);
    }
};

// kRows rows [row0, row0 + kRows) of one (b, h) slice loaded by kBy threads, staged in registers
// so that the next chunk's global loads can overlap the current chunk's arithmetic. Rows outside
// [0, T) and columns past D read as zero: they leave distances and dot products unchanged.
template <typename scalar_t, int kD, int kRows = kTile, int kBy = kThreads>
struct Chunk {
    static constexpr int kPer = kRows * kD / kBy;
    float x[kPer];

    // src: row 0 of one (b, h) slice whose rows lie `stride` elements apart.
    __device__ __forceinline__ void load(const scalar_t* __restrict__ src, int64_t stride, int row0,
                                         int T, int D) {
#pragma unroll
        for (int n = 0; n < kPer; ++n) {
            const int e = threadIdx.x + n * kBy;
            const int r = row0 + e / kD, d = e % kD;
            x[n] = (d < D && r >= 0 && r < T) ? to_float(src[static_cast<int64_t>(r) * stride + d])
                                               : 0.f;
        }
    }

    __device__ __forceinline__ void store(float* __restrict__ dst) const {
#pragma unroll
        for (int n = 0; n < kPer; ++n) {
            const int e = threadIdx.x + n * kBy;
            dst[(e / kD) * (kD + 4) + e % kD] = x[n];
        }
    }
};

// Squared distance of a block of 4 dims, summed apart before it joins the running sum: the running
// sum of ||q - k||^2 grows with every dim, and adding 4-dim blocks to it rounds a quarter as often
// (about half the error of one running sum, on a par with ATen's fp32 expanded form).
__device__ __forceinline__ float sq_dist4(float4 x, float4 y, float acc) {
    const float t0 = x.x - y.x, t1 = x.y - y.y, t2 = x.z - y.z, t3 = x.w - y.w;
    float block = __fmul_rn(t0, t0);
    block = __fmaf_rn(t1, t1, block);
    block = __fmaf_rn(t2, t2, block);
    block = __fmaf_rn(t3, t3, block);
    return __fadd_rn(acc, block);
}

__device__ __forceinline__ float dot4(float4 x, float4 y, float acc) {
    acc = __fmaf_rn(x.x, y.x, acc);
    acc = __fmaf_rn(x.y, y.y, acc);
    acc = __fmaf_rn(x.z, y.z, acc);
    return __fmaf_rn(x.w, y.w, acc);
}

// acc[a][b] += sum over d of f(rows[tr*4 + a][d], cols[tc + 16*b][d]), f the squared difference or
// the product, in ascending d. Every kernel uses this order, so the backward passes recompute the
// forward's scores bit for bit (the squared difference is symmetric), and dot products match the
// sequential sum of the query pass's delta.
template <int kD, bool kSquaredDistance>
__device__ __forceinline__ void pair_tile(const float* __restrict__ rows,
                                          const float* __restrict__ cols, float (&acc)[4][4]) {
    constexpr int kP = kD + 4;
    const int tr = threadIdx.x / 16, tc = threadIdx.x % 16;
#pragma unroll 2
    for (int d = 0; d < kD; d += 4) {
        float4 r[4], c[4];
#pragma unroll
        for (int a = 0; a < 4; ++a) {
            r[a] = *reinterpret_cast<const float4*>(rows + (tr * 4 + a) * kP + d);
        }
#pragma unroll
        for (int b = 0; b < 4; ++b) {
            c[b] = *reinterpret_cast<const float4*>(cols + (tc + 16 * b) * kP + d);
        }
#pragma unroll
        for (int a = 0; a < 4; ++a) {
#pragma unroll
            for (int b = 0; b < 4; ++b) {
                acc[a][b] = kSquaredDistance ? sq_dist4(r[a], c[b], acc[a][b])
                                             : dot4(r[a], c[b], acc[a][b]);
            }
        }
    }
}

// The head dims a thread owns in a (kTile, kD) output: kG groups of kV consecutive dims, laid
// out so that a warp's vector loads of one row are contiguous.
template <int kD>
struct Dims {
    static constexpr int kV = kD >= 64 ? 4 : 2;
    static constexpr int kG = kD / (16 * kV);
    static constexpr int kE = kV * kG;
    __device__ static int of(int tc, int n) { return (n / kV) * 16 * kV + tc * kV + n % kV; }
};

// acc[a][n] += sum over x < kTile of w[x][tr*4 + a] * vals[x][Dims::of(tc, n)], and
// wsum[a] += w[x][tr*4 + a] when kSum: a weighted sum of chunk rows for each owned row. w has a
// row pitch of kPitch floats.
template <int kD, bool kSum, int kPitch = kPitchS>
__device__ __forceinline__ void weighted_rows(const float* w, const float* __restrict__ vals,
                                              float (&acc)[4][Dims<kD>::kE], float (&wsum)[4]) {
    using S = Dims<kD>;
    constexpr int kP = kD + 4;
    const int tr = threadIdx.x / 16, tc = threadIdx.x % 16;
#pragma unroll 4
    for (int x = 0; x < kTile; ++x) {
        const float4 w4 = *reinterpret_cast<const float4*>(w + x * kPitch + tr * 4);
        const float wa[4] = {w4.x, w4.y, w4.z, w4.w};
        float v[S::kE];
#pragma unroll
        for (int g = 0; g < S::kG; ++g) {
            const float* src = vals + x * kP + g * 16 * S::kV + tc * S::kV;
            if constexpr (S::kV == 4) {
                const float4 t = *reinterpret_cast<const float4*>(src);
                v[g * 4] = t.x;
                v[g * 4 + 1] = t.y;
                v[g * 4 + 2] = t.z;
                v[g * 4 + 3] = t.w;
            } else {
                const float2 t = *reinterpret_cast<const float2*>(src);
                v[g * 2] = t.x;
                v[g * 2 + 1] = t.y;
            }
        }
#pragma unroll
        for (int a = 0; a < 4; ++a) {
#pragma unroll
            for (int n = 0; n < S::kE; ++n) acc[a][n] = __fmaf_rn(wa[a], v[n], acc[a][n]);
            if constexpr (kSum) wsum[a] += wa[a];
        }
    }
}

// Stores a thread's 4 x 4 patch transposed, tile[col][row], chunk rows as tile rows: the layout
// weighted_rows reads, with the chunk as the summed index.
template <int kPitch = kPitchS>
__device__ __forceinline__ void store_patch(float* tile, const float (&v)[4][4]) {
    const int tr = threadIdx.x / 16, tc = threadIdx.x % 16;
#pragma unroll
    for (int b = 0; b < 4; ++b) {
        *reinterpret_cast<float4*>(tile + (tc + 16 * b) * kPitch + tr * 4) =
            make_float4(v[0][b], v[1][b], v[2][b], v[3][b]);
    }
}

// ---- Tensor cores (bf16 operands, compute capability 8.0+; the products in mma.cuh) ----
constexpr int kMmaPad = 8;  // bf16 per row beyond kD: fragment loads then hit 32 distinct banks

// ---- Fragments from shared memory (ldmatrix) ----
// One ldmatrix.x4 moves four 8 x 8 blocks of a bf16 tile into four registers per thread, each
// block in the layout of an mma fragment register: thread (g, t) gets row g, columns 2t and
// 2t + 1, the lower column in the low half; with kTrans, the block's transpose. Lane l names the
// row l % 8 of block l / 8. Rows must start at 16-byte boundaries (kMmaPad keeps them there and
// spreads eight rows over all 32 banks). The bits are those of element-by-element loads.
template <bool kTrans>
__device__ __forceinline__ void load_blocks(unsigned (&r)[4], const uint16_t* lane_row) {
#if __CUDA_ARCH__ >= 800
    const auto at = static_cast<unsigned>(__cvta_generic_to_shared(lane_row));
    if constexpr (kTrans) {
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                     : "r"(at));
    } else {
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                     : "r"(at));
    }
#else
    __trap();
#endif
}

// The A fragment of rows m0 .. m0 + 15, dims d0 .. d0 + 15 of a tile (pitch bf16 per row).
__device__ __forceinline__ void a_fragment(const uint16_t* tile, int pitch, int m0, int d0,
                                           unsigned (&a)[4]) {
    const int l = threadIdx.x % 32;
    load_blocks<false>(a, tile + (m0 + l % 16) * pitch + d0 + 8 * (l / 16));
}

// B fragments of a product with rows n0 .. n0 + 15 of a tile (B = tile^T) over dims d0 ..
// d0 + 15: b[0], b[1] for rows n0 .. n0 + 7 and b[2], b[3] for rows n0 + 8 .. n0 + 15.
__device__ __forceinline__ void bt_fragments(const uint16_t* tile, int pitch, int n0, int d0,
                                             unsigned (&b)[4]) {
    const int l = threadIdx.x % 32;
    load_blocks<false>(b, tile + (n0 + l % 8 + 8 * (l / 16)) * pitch + d0 + 8 * (l / 8 % 2));
}

// B fragments of rows k0 .. k0 + 15 of a tile (B = the tile, its rows summed), dims d0 .. d0 +
// 15: b[0], b[1] for dims d0 .. d0 + 7 and b[2], b[3] for dims d0 + 8 .. d0 + 15.
__device__ __forceinline__ void b_fragments(const uint16_t* tile, int pitch, int k0, int d0,
                                            unsigned (&b)[4]) {
    const int l = threadIdx.x % 32;
    load_blocks<true>(b, tile + (k0 + l % 16) * pitch + d0 + 8 * (l / 16));
}

// kRows rows [row0, row0 + kRows) of one (b, h) slice as bf16 bits into dst (row pitch kD +
// kMmaPad), one element per load, 16 loads in flight per thread before their stores; rows outside
// [0, T) and dims past D are zero. For rows that are not all 16-byte aligned: start_rows_bf16
// copies aligned ones. kBy threads of the block take part.
template <int kD, int kRows, int kBy = kFwdThreads>
__device__ __forceinline__ void load_rows_bf16(uint16_t* __restrict__ dst,
                                               const uint16_t* __restrict__ src, int64_t stride,
                                               int row0, int T, int D) {
    constexpr int kPer = kRows * kD / kBy;
    static_assert(kRows * kD % kBy == 0, "elements must fill whole passes");
    constexpr int kBatch = kPer < 16 ? kPer : 16;
#pragma unroll
    for (int n0 = 0; n0 < kPer; n0 += kBatch) {
        uint16_t x[kBatch];
#pragma unroll
        for (int n = 0; n < kBatch; ++n) {
            const int e = threadIdx.x + (n0 + n) * kBy;
            const int r = row0 + e / kD, d = e % kD;
            x[n] = (d < D && r >= 0 && r < T) ? src[static_cast<int64_t>(r) * stride + d]
                                              : uint16_t{0};
        }
#pragma unroll
        for (int n = 0; n < kBatch; ++n) {
            const int e = threadIdx.x + (n0 + n) * kBy;
            dst[e / kD * (kD + kMmaPad) + e % kD] = x[n];
        }
    }
}

// ---- Asynchronous copies into shared memory (cp.async, compute capability 8.0+) ----
// A copy started by these helpers bypasses the registers and lands while the block computes:
// the kernels start the next chunk's copies before they work on the current one, commit each
// chunk as one group, and wait for it (copies_landed<N>: all but the N newest groups) followed by
// a barrier before reading it.

// Copies kBytes (4, 8 or 16) from global src to shared dst, or writes zeros when !in (src must
// still be a valid address; nothing is read from it then).
template <int kBytes>
__device__ __forceinline__ void copy_async(void* dst, const void* src, bool in) {
#if __CUDA_ARCH__ >= 800
    static_assert(kBytes == 4 || kBytes == 8 || kBytes == 16, "cp.async moves 4, 8 or 16 bytes");
    const auto to = static_cast<unsigned>(__cvta_generic_to_shared(dst));
    if constexpr (kBytes == 16) {
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(to), "l"(src),
                     "r"(in ? 16 : 0));
    } else {
        asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(to), "l"(src),
                     "n"(kBytes), "r"(in ? kBytes : 0));
    }
#else
    __trap();
#endif
}

// Closes the group of copies this thread started since the last call.
__device__ __forceinline__ void commit_copies() {
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.commit_group;\n" ::);
#endif
}

// Waits until at most kPending of this thread's newest groups are still in flight; the block
// then needs a barrier before any thread reads what another one copied.
template <int kPending>
__device__ __forceinline__ void copies_landed() {
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
#endif
}

// ---- Overlapped launches (programmatic dependent launch, compute capability 9.0+) ----
// A kernel launched with launch(..., early = true) may start while the kernel before it on the
// stream still runs. Before it reads what that kernel writes, and before it writes global memory
// at all (the allocator may hand out again memory that the kernel before still uses), it calls
// wait_for_previous_grid(), which returns once that kernel has finished and its writes are
// visible (at once on later calls, and on older GPUs, where nothing starts early). A kernel lets
// the next one start with let_next_grid_start(), which it calls only after its own wait (or
// anywhere, when it is not launched early itself): so a kernel that has started may read
// whatever the kernels before its predecessor wrote.
__device__ __forceinline__ void wait_for_previous_grid() {
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void let_next_grid_start() {
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// The rows of load_rows_bf16, without waiting where kWide (every row of src 16-byte aligned and D
// a multiple of 8, Params::wide): one 16-byte copy per eight dims (rows outside [0, T) and dims
// past D zero-filled). Other tiles load synchronously through load_rows_bf16, so that a kernel
// pipelines its chunks with one code path for both. kBy threads of the block take part.
template <int kD, int kRows, bool kWide, int kBy = kFwdThreads>
__device__ __forceinline__ void start_rows_bf16(uint16_t* __restrict__ dst,
                                                const uint16_t* __restrict__ src, int64_t stride,
                                                int row0, int T, int D) {
    if constexpr (kWide) {
        constexpr int kPieces = kD / 8;
        constexpr int kAll = kRows * kPieces;
        constexpr int kPer = (kAll + kBy - 1) / kBy;
        constexpr int kRowStep = kBy / kPieces;  // rows between one thread's copies
        static_assert(kAll % kBy == 0 || kAll < kBy, "pieces must fill whole passes or one part");
        static_assert(kBy % kPieces == 0, "a thread keeps its dims from copy to copy");
        if (kAll < kBy && threadIdx.x >= kAll) return;
        const int row = threadIdx.x / kPieces, d = threadIdx.x % kPieces * 8;
        // This thread's first source row; each further copy is kRowStep rows on (one 64-bit
        // product per call instead of one per copy).
        const uint16_t* from = src + static_cast<int64_t>(row0 + row) * stride + d;
        const int64_t step = static_cast<int64_t>(kRowStep) * stride;
        if (row0 >= 0 && row0 + kRows <= T && D == kD) {
            // Every row and dim of the chunk is in (most chunks of a long sequence): no tests.
#pragma unroll
            for (int n = 0; n < kPer; ++n) {
                copy_async<16>(dst + (row + n * kRowStep) * (kD + kMmaPad) + d, from + n * step,
                               true);
            }
            return;
        }
#pragma unroll
        for (int n = 0; n < kPer; ++n) {
            const int r = row0 + row + n * kRowStep;
            const bool in = d < D && r >= 0 && r < T;
            copy_async<16>(dst + (row + n * kRowStep) * (kD + kMmaPad) + d,
                           in ? from + n * step : src, in);
        }
    } else {
        load_rows_bf16<kD, kRows, kBy>(dst, src, stride, row0, T, D);
    }
}

// The values of rows [row0, row0 + kRows) of a per-row array (values: the (b, h) slice's row 0;
// row norms, log-sum-exps, thresholds, deltas) into dst, one 4- or 8-byte copy per row by the
// first kRows threads. Rows outside [0, T) read row 0 or T - 1: the kernels never use them.
template <int kRows, typename V>
__device__ __forceinline__ void start_row_values(V* __restrict__ dst, const V* values, int row0,
                                                 int T) {
    if (threadIdx.x < kRows) {
        const int r = min(max(row0 + static_cast<int>(threadIdx.x), 0), T - 1);
        copy_async<sizeof(V)>(dst + threadIdx.x, values + r, true);
    }
}

// Sum over the four lanes of a fragment row group (the lanes that share g).
__device__ __forceinline__ float quad_sum(float x) {
    x += __shfl_xor_sync(kFull, x, 1);
    return x + __shfl_xor_sync(kFull, x, 2);
}

}  // namespace krause::fused
