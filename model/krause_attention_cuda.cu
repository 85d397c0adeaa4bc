// Fused CUDA Krause attention: the forward kernel (exact top-K of each causal window, softmax,
// weighted sum of values) and two backward kernels, each with a tensor-core form for bf16, joined
// by a torch::autograd::Function.
// The reference they must match is krause_attention_windowed (model/krause_attention.cpp).
#include "model/krause_attention_cuda.h"

#include "model/attention.h"
#include "model/cuda_warp.cuh"

#include <ATen/core/grad_mode.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_bf16.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>

namespace krause {
namespace {

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
constexpr int kMaxHeadDim = 128;

template <typename T>
__device__ __forceinline__ float to_float(T x) {
    return static_cast<float>(x);
}

// exp(s - lse) with the fp64 log-sum-exp of the row (see top_k_softmax).
__device__ __forceinline__ float probability(float s, double lse) {
    return expf(static_cast<float>(static_cast<double>(s) - lse));
}

// Where the rows of a (B, H, T, D) operand lie: element (b, h, t, d) at offset
// b * Layout::b + h * Layout::h + t * Layout::t + d.
// Heads may be interleaved with time, as in the (B, T, 3, H, D) output of one fused q/k/v
// projection, so the kernels read and write heads in place instead of through transposed copies.
struct Layout {
    int64_t b, h, t;
    __device__ __forceinline__ int64_t slice(int bh, int H) const {
        return static_cast<int64_t>(bh / H) * b + static_cast<int64_t>(bh % H) * h;
    }
    __device__ __forceinline__ int64_t at(int bh, int H, int i) const {
        return slice(bh, H) + static_cast<int64_t>(i) * t;
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

// Top-K and softmax of one query's window, run by a whole warp. col[r * stride] holds the score
// of window slot r (key i - W + 1 + r); slots r < lo have no key. Keeps the K largest scores (all
// of them when the window holds <= K keys; among equal scores the lowest r first), writes the
// kept bits to mask_row (when given), overwrites the column with the probabilities (0 where
// dropped) and returns the log-sum-exp. kSlots > 0 caches the window in kSlots registers per lane
// (W <= 32 * kSlots); kSlots = 0 re-reads it from memory for any W.
// The log-sum-exp is fp64 and p = exp(s - lse) is formed the same way here and in the backward:
// an fp32 lse of |lse| ~ 20 would scale every p of a row by a common 1 +- 1e-6, and d log_sigma,
// a sum of ds * s in which sum_j ds_ij cancels to ~0, would amplify that by |s|.
template <int kSlots>
__device__ double top_k_softmax(float* col, int stride, int lo, int W, int top_k,
                                unsigned* mask_row) {
    const int lane = threadIdx.x % 32;
    const int n_slots = kSlots > 0 ? kSlots : (W + 31) / 32;
    const int n_words = (W + 31) / 32;
    float cache[kSlots > 0 ? kSlots : 1] = {};
    auto in_window = [&](int m) {
        const int r = lane + 32 * m;
        return r >= lo && r < W;
    };
    auto score = [&](int m) -> float {
        if constexpr (kSlots > 0) {
            return cache[m];
        } else {
            return in_window(m) ? col[(lane + 32 * m) * stride] : -INFINITY;
        }
    };
    // The bisection below reads every key about 30 times: cached windows keep them in registers.
    unsigned keys[kSlots > 0 ? kSlots : 1] = {};
    if constexpr (kSlots > 0) {
#pragma unroll
        for (int m = 0; m < kSlots; ++m) {
            cache[m] = in_window(m) ? col[(lane + 32 * m) * stride] : -INFINITY;
            keys[m] = in_window(m) ? order_key(cache[m]) : 0u;
        }
    }
    auto key = [&](int m) -> unsigned {
        if constexpr (kSlots > 0) {
            return keys[m];
        } else {
            return in_window(m) ? order_key(score(m)) : 0u;
        }
    };

    // Bisect on the key bits for the largest t with #{key >= t} >= K: the K-th largest key, or an
    // earlier t that already isolates exactly K keys. Bits above the highest one where the
    // smallest and largest keys differ are common to all keys and skipped.
    const bool select = W - lo > top_k;
    unsigned t = 0;
    int quota = 0;  // how many keys equal to t are kept
    if (select) {
        unsigned lo_key = 0xffffffffu, hi_key = 0u;
#pragma unroll
        for (int m = 0; m < n_slots; ++m) {
            const unsigned u = key(m);
            if (u != 0u) {
                lo_key = min(lo_key, u);
                hi_key = max(hi_key, u);
            }
        }
        lo_key = warp_min(lo_key);
        hi_key = warp_max(hi_key);
        t = hi_key;
        if (lo_key != hi_key) {
            const int top = 31 - __clz(lo_key ^ hi_key);
            t = hi_key & ~((2u << top) - 1u);
            for (int bit = top; bit >= 0; --bit) {
                const unsigned cand = t | (1u << bit);
                int n = 0;
#pragma unroll
                for (int m = 0; m < n_slots; ++m) n += key(m) >= cand;
                n = warp_sum(n);
                if (n >= top_k) {
                    t = cand;
                    if (n == top_k) break;
                }
            }
        }
        int above = 0;
#pragma unroll
        for (int m = 0; m < n_slots; ++m) above += key(m) > t;
        quota = top_k - warp_sum(above);
    }

    int ties_seen = 0;
    float mx = -INFINITY;
#pragma unroll
    for (int m = 0; m < n_slots; ++m) {
        const int r = lane + 32 * m;
        const unsigned u = key(m);
        const bool tie = select && u != 0u && u == t;
        const unsigned ties = __ballot_sync(kFull, tie);
        const int rank = ties_seen + __popc(ties & ((1u << lane) - 1u));
        const bool keep = u != 0u && (!select || u > t || (tie && rank < quota));
        ties_seen += __popc(ties);
        const unsigned word = __ballot_sync(kFull, keep);
        if (mask_row != nullptr && lane == 0 && m < n_words) mask_row[m] = word;
        const float s = keep ? score(m) : -INFINITY;
        if constexpr (kSlots > 0) {
            cache[m] = s;
        } else if (r < W) {
            col[r * stride] = s;
        }
        mx = fmaxf(mx, s);
    }
    mx = warp_max(mx);
    float sum = 0.f;
#pragma unroll
    for (int m = 0; m < n_slots; ++m) sum += expf(score(m) - mx);
    const double lse = static_cast<double>(mx) + log(static_cast<double>(warp_sum(sum)));
#pragma unroll
    for (int m = 0; m < n_slots; ++m) {
        const int r = lane + 32 * m;
        const float s = score(m);
        if (r < W) col[r * stride] = probability(s, lse);
    }
    return lse;
}

template <typename scalar_t>
struct ForwardParams {
    const scalar_t* q;       // (B, H, T, D)
    const scalar_t* k;       // (B, H, T, D)
    const scalar_t* v;       // (B, H, T, D)
    const float* log_sigma;  // (H)
    scalar_t* out;           // (B, H, T, D)
    float* out_f32;          // (B, H, T, D) unrounded output for the backward's delta, or null
    unsigned* mask;          // (B, H, T, NW) bit r: key i - W + 1 + r kept; null when inferring
    double* lse;             // (B, H, T) log-sum-exp of the kept scores; null when inferring
    float* scores;           // (grid, n_cols, kFwdPitch) when the score tile outgrows shared memory
    Layout lq, lk, lv, lo;   // of q, k, v and of out / out_f32
    int H, T, D, W, K, NW;
    int n_qtiles;  // ceil(T / kFwdRows) query tiles per (b, h)
    int n_tiles;   // B * H * n_qtiles
    int n_cols;    // keys a query tile spans, kFwdRows + W - 1, rounded up to whole chunks
};

// Tile `tile` of the forward grid: its (b, h), first query i0, the key of score row 0
// (i0 - W + 1) and the head's 1 / (2 sigma^2).
struct QueryTile {
    int bh, i0, key0;
    float coef;
};

template <typename scalar_t>
__device__ __forceinline__ QueryTile query_tile(const ForwardParams<scalar_t>& p, int tile) {
    const int bh = tile / p.n_qtiles;
    const int i0 = (tile % p.n_qtiles) * kFwdRows;
    return {bh, i0, i0 - p.W + 1, 0.5f * expf(-2.f * p.log_sigma[bh % p.H])};
}

// The middle phase of both forward kernels, one warp per query of the tile at i0: top-K and
// softmax of its column of the score tile (scores[key row][query]), mask bits and lse.
template <typename scalar_t>
__device__ __forceinline__ void top_k_rows(float* scores, const ForwardParams<scalar_t>& p, int bh,
                                           int i0) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    for (int qi = warp; qi < kFwdRows; qi += kFwdWarps) {
        const int i = i0 + qi;
        float* col = scores + qi * kFwdPitch + qi;  // slot r of query qi at col[r * kFwdPitch]
        if (i >= p.T) {
            for (int r = lane; r < p.W; r += 32) col[r * kFwdPitch] = 0.f;
            continue;
        }
        const int lo = max(0, p.W - 1 - i);
        const int64_t row = static_cast<int64_t>(bh) * p.T + i;
        unsigned* mask_row = p.mask != nullptr ? p.mask + row * p.NW : nullptr;
        double lse;
        if (p.NW <= 4) {
            lse = top_k_softmax<4>(col, kFwdPitch, lo, p.W, p.K, mask_row);
        } else if (p.NW <= 8) {
            lse = top_k_softmax<8>(col, kFwdPitch, lo, p.W, p.K, mask_row);
        } else {
            lse = top_k_softmax<0>(col, kFwdPitch, lo, p.W, p.K, mask_row);
        }
        if (p.lse != nullptr && lane == 0) p.lse[row] = lse;
    }
}

// One block per tile of kFwdRows queries of one (b, h), over the key span [i0 - W + 1, i0 +
// kFwdRows): (1) distances of the tile against each key chunk into a transposed score tile
// (row = key), (2) one warp per query: top-K, softmax, mask bits and lse, (3) the probabilities
// times the value chunks.
template <typename scalar_t, int kD, bool kScoresInShared>
__global__ void __launch_bounds__(kFwdThreads, kD <= 64 ? 4 : 2)
    krause_forward_kernel(const ForwardParams<scalar_t> p) {
    constexpr int kP = kD + 4;
    using S = Dims<kD>;
    extern __shared__ float4 shared4[];
    float* q_tile = reinterpret_cast<float*>(shared4);  // (kFwdRows, kP)
    float* kv_tile = q_tile + kFwdRows * kP;              // (kTile, kP) key, then value chunks
    float* scores = kScoresInShared
                        ? kv_tile + kTile * kP
                        : p.scores + static_cast<int64_t>(blockIdx.x) * p.n_cols * kFwdPitch;
    const int tr = threadIdx.x / 16, tc = threadIdx.x % 16;
    const int n_chunks = p.n_cols / kTile;
    Chunk<scalar_t, kD, kTile, kFwdThreads> chunk;
    Chunk<scalar_t, kD, kFwdRows, kFwdThreads> q_rows;

    for (int tile = blockIdx.x; tile < p.n_tiles; tile += gridDim.x) {
        const auto [bh, i0, key0, coef] = query_tile(p, tile);

        // Chunks go straight to shared memory: four blocks share a multiprocessor, and one's
        // loads overlap the others' arithmetic.
        __syncthreads();  // the previous tile is done with every buffer
        q_rows.load(p.q + p.lq.slice(bh, p.H), p.lq.t, i0, p.T, p.D);
        q_rows.store(q_tile);
        for (int c = 0; c < n_chunks; ++c) {
            __syncthreads();
            chunk.load(p.k + p.lk.slice(bh, p.H), p.lk.t, key0 + c * kTile, p.T, p.D);
            chunk.store(kv_tile);
            __syncthreads();
            float dist[4][4] = {};
            pair_tile<kD, true>(q_tile, kv_tile, dist);
            float s[4][4];
#pragma unroll
            for (int a = 0; a < 4; ++a) {
#pragma unroll
                for (int b = 0; b < 4; ++b) {
                    const int r = c * kTile + tc + 16 * b - (tr * 4 + a);  // window slot
                    s[a][b] = (r >= 0 && r < p.W) ? -dist[a][b] * coef : 0.f;
                }
            }
            store_patch<kFwdPitch>(scores + c * kTile * kFwdPitch, s);
        }
        __syncthreads();

        top_k_rows(scores, p, bh, i0);

        float o[4][S::kE] = {};
        float unused[4];
        for (int c = 0; c < n_chunks; ++c) {
            chunk.load(p.v + p.lv.slice(bh, p.H), p.lv.t, key0 + c * kTile, p.T, p.D);
            chunk.store(kv_tile);
            __syncthreads();
            weighted_rows<kD, false, kFwdPitch>(scores + c * kTile * kFwdPitch, kv_tile, o,
                                                unused);
            __syncthreads();
        }
#pragma unroll
        for (int a = 0; a < 4; ++a) {
            const int i = i0 + tr * 4 + a;
            if (i >= p.T) continue;
#pragma unroll
            for (int n = 0; n < S::kE; ++n) {
                const int d = S::of(tc, n);
                if (d >= p.D) continue;
                const int64_t idx = p.lo.at(bh, p.H, i) + d;
                p.out[idx] = static_cast<scalar_t>(o[a][n]);
                if (p.out_f32 != nullptr) p.out_f32[idx] = o[a][n];
            }
        }
    }
}

// ---- The forward pass on tensor cores (bf16 inputs, compute capability 8.0+) ----
// The same three phases as krause_forward_kernel, but the distances come from one bf16 product
// q.k per pair (exact products, fp32 accumulation: ||q||^2 + ||k||^2 - 2 q.k in fp32, clamped at
// 0 like the ATen path) and the weighted sum of values from probabilities split into two bf16
// parts, both on mma.sync m16n8k16. Top-K and softmax stay as they are. Each of the four warps
// owns 16 queries (m-tile warp % 2) and half of the key chunk (scores) or of the head dims
// (output).
constexpr int kMmaPad = 8;  // bf16 per row beyond kD: fragment loads then hit 32 distinct banks

__device__ __forceinline__ void mma_bf16(float (&c)[4], const unsigned (&a)[4], unsigned b0,
                                         unsigned b1) {
#if __CUDA_ARCH__ >= 800
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
        "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
    __trap();
#endif
}

// x (the lower k index of a fragment) and y rounded to one bf16 pair, x in the low half.
__device__ __forceinline__ unsigned pack_bf16(float x, float y) {
    const __nv_bfloat162 b = __floats2bfloat162_rn(x, y);
    return *reinterpret_cast<const unsigned*>(&b);
}

// Two floats x (lower k index of a fragment, low half) and y as a bf16 pair `hi` plus a bf16 pair
// `lo` of what rounding left: hi + lo holds x and y to about 16 bits, where bf16 alone would give
// each probability a relative error of 2^-9. That error would reach the backward pass through
// the output (delta_i = dO_i . O_i) and raise the error of dq up to about three times ATen's.
__device__ __forceinline__ void split_bf16(float x, float y, unsigned& hi, unsigned& lo) {
    hi = pack_bf16(x, y);
    const float2 hf = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&hi));
    lo = pack_bf16(x - hf.x, y - hf.y);
}

// kRows rows [row0, row0 + kRows) of one (b, h) slice as bf16 bits into dst (row pitch kD +
// kMmaPad); rows outside [0, T) and dims past D are zero. All loads are issued before the stores.
template <int kD, int kRows>
__device__ __forceinline__ void load_rows_bf16(uint16_t* __restrict__ dst,
                                               const uint16_t* __restrict__ src, int64_t stride,
                                               int row0, int T, int D) {
    constexpr int kPer = kRows * kD / kFwdThreads;
    constexpr int kBatch = kPer < 16 ? kPer : 16;  // loads in flight per thread
#pragma unroll
    for (int n0 = 0; n0 < kPer; n0 += kBatch) {
        uint16_t x[kBatch];
#pragma unroll
        for (int n = 0; n < kBatch; ++n) {
            const int e = threadIdx.x + (n0 + n) * kFwdThreads;
            const int r = row0 + e / kD, d = e % kD;
            x[n] = (d < D && r >= 0 && r < T) ? src[static_cast<int64_t>(r) * stride + d] : 0;
        }
#pragma unroll
        for (int n = 0; n < kBatch; ++n) {
            const int e = threadIdx.x + (n0 + n) * kFwdThreads;
            dst[(e / kD) * (kD + kMmaPad) + e % kD] = x[n];
        }
    }
}

// Dims 2n and 2n + 1 of row r of a bf16 tile, as floats.
__device__ __forceinline__ float2 dim_pair(const uint16_t* rows, int pitch, int r, int n) {
    const unsigned w = reinterpret_cast<const unsigned*>(rows + r * pitch)[n];
    return make_float2(__uint_as_float(w << 16), __uint_as_float(w & 0xffff0000u));
}

// Squared norms in fp32 of the kRows rows of a bf16 tile (row pitch `pitch`), by kWarps warps
// with kLanes lanes per row. The order of the sum depends only on kD, so the forward and backward
// kernels get the same bits for the same row.
template <int kD, int kRows, int kWarps>
__device__ __forceinline__ void row_norms(const uint16_t* __restrict__ rows, int pitch,
                                          float* __restrict__ norms) {
    constexpr int kWords = kD / 2;
    constexpr int kLanes = kWords < 32 ? kWords : 32;
    constexpr int kPerPass = 32 / kLanes * kWarps;
    static_assert(kRows % kPerPass == 0, "rows must fill whole passes");
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
    for (int r0 = 0; r0 < kRows; r0 += kPerPass) {
        const int r = r0 + warp * (32 / kLanes) + lane / kLanes;
        float acc = 0.f;
#pragma unroll
        for (int n = lane % kLanes; n < kWords; n += kLanes) {
            const float2 x = dim_pair(rows, pitch, r, n);
            acc = __fmaf_rn(x.x, x.x, acc);
            acc = __fmaf_rn(x.y, x.y, acc);
        }
#pragma unroll
        for (int o = kLanes / 2; o > 0; o >>= 1) acc += __shfl_xor_sync(kFull, acc, o);
        if (lane % kLanes == 0) norms[r] = acc;
    }
}

// ||a - b||^2 from the two norms and the tensor-core product a.b, rounded the same way wherever
// it is formed (no contraction into an fma; the sum of the norms is symmetric).
__device__ __forceinline__ float expanded_distance(float norm_a, float norm_b, float dot) {
    return fmaxf(__fsub_rn(__fadd_rn(norm_a, norm_b), __fmul_rn(2.f, dot)), 0.f);
}

size_t mma_forward_shared_bytes(int kd, int n_cols, bool scores_in_shared) {
    return sizeof(float) * (kFwdRows + kTile) +
           sizeof(uint16_t) * (kFwdRows + kTile) * (kd + kMmaPad) +
           (scores_in_shared ? sizeof(float) * n_cols * kFwdPitch : 0);
}

template <int kD, bool kScoresInShared>
__global__ void __launch_bounds__(kFwdThreads, kD <= 32 ? 4 : kD <= 64 ? 3 : 2)
    krause_forward_mma_kernel(const ForwardParams<c10::BFloat16> p) {
#if __CUDA_ARCH__ >= 800
    constexpr int kPq = kD + kMmaPad;  // bf16 per tile row
    constexpr int kPw = kPq / 2;       // 32-bit words per tile row
    extern __shared__ float4 shared4[];
    float* q_norm = reinterpret_cast<float*>(shared4);                // (kFwdRows)
    float* k_norm = q_norm + kFwdRows;                                // (kTile)
    uint16_t* q_tile = reinterpret_cast<uint16_t*>(k_norm + kTile);   // (kFwdRows, kPq)
    uint16_t* kv_tile = q_tile + kFwdRows * kPq;                      // (kTile, kPq)
    float* scores = kScoresInShared
                        ? reinterpret_cast<float*>(kv_tile + kTile * kPq)
                        : p.scores + static_cast<int64_t>(blockIdx.x) * p.n_cols * kFwdPitch;
    const auto* qw = reinterpret_cast<const unsigned*>(q_tile);
    const auto* kw = reinterpret_cast<const unsigned*>(kv_tile);
    const auto* q_src = reinterpret_cast<const uint16_t*>(p.q);
    const auto* k_src = reinterpret_cast<const uint16_t*>(p.k);
    const auto* v_src = reinterpret_cast<const uint16_t*>(p.v);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int g = lane / 4, t = lane % 4;  // fragment row group and column pair
    const int m0 = 16 * (warp % 2);        // this warp's first query of the tile
    const int half = warp / 2;             // which half of the keys (scores) or dims (output)
    const int n_chunks = p.n_cols / kTile;

    for (int tile = blockIdx.x; tile < p.n_tiles; tile += gridDim.x) {
        const auto [bh, i0, key0, coef] = query_tile(p, tile);

        __syncthreads();  // the previous tile is done with every buffer
        load_rows_bf16<kD, kFwdRows>(q_tile, q_src + p.lq.slice(bh, p.H), p.lq.t, i0, p.T, p.D);
        __syncthreads();
        row_norms<kD, kFwdRows, kFwdWarps>(q_tile, kPq, q_norm);
        for (int c = 0; c < n_chunks; ++c) {
            __syncthreads();
            load_rows_bf16<kD, kTile>(kv_tile, k_src + p.lk.slice(bh, p.H), p.lk.t,
                                      key0 + c * kTile, p.T, p.D);
            __syncthreads();
            row_norms<kD, kTile, kFwdWarps>(kv_tile, kPq, k_norm);
            float dot[4][4] = {};  // 4 n-tiles of 8 keys: half * 32 + 8 * nt
#pragma unroll
            for (int ks = 0; ks < kD / 16; ++ks) {
                const unsigned a[4] = {qw[(m0 + g) * kPw + 8 * ks + t],
                                       qw[(m0 + g + 8) * kPw + 8 * ks + t],
                                       qw[(m0 + g) * kPw + 8 * ks + 4 + t],
                                       qw[(m0 + g + 8) * kPw + 8 * ks + 4 + t]};
#pragma unroll
                for (int nt = 0; nt < 4; ++nt) {
                    const int n = half * 32 + 8 * nt + g;
                    mma_bf16(dot[nt], a, kw[n * kPw + 8 * ks + t], kw[n * kPw + 8 * ks + 4 + t]);
                }
            }
            __syncthreads();  // k_norm is complete
#pragma unroll
            for (int nt = 0; nt < 4; ++nt) {
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const int qi = m0 + g + 8 * (e / 2);
                    const int n = half * 32 + 8 * nt + 2 * t + e % 2;
                    const int r = c * kTile + n - qi;  // window slot
                    const float dist = expanded_distance(q_norm[qi], k_norm[n], dot[nt][e]);
                    scores[(c * kTile + n) * kFwdPitch + qi] =
                        (r >= 0 && r < p.W) ? -dist * coef : 0.f;
                }
            }
        }
        __syncthreads();

        top_k_rows(scores, p, bh, i0);

        // out = P V: A = probabilities (rows m0.., keys of the chunk) from the transposed score
        // tile, B = value rows; this warp's dims are half * kD / 2 + 8 * nt.
        constexpr int kNt = kD / 16;
        float o[kNt][4] = {};
        for (int c = 0; c < n_chunks; ++c) {
            __syncthreads();
            load_rows_bf16<kD, kTile>(kv_tile, v_src + p.lv.slice(bh, p.H), p.lv.t,
                                      key0 + c * kTile, p.T, p.D);
            __syncthreads();
#pragma unroll
            for (int ks = 0; ks < kTile / 16; ++ks) {
                const float* pr = scores + (c * kTile + 16 * ks + 2 * t) * kFwdPitch + m0 + g;
                unsigned pa[4], pb[4];  // probabilities: high and low bf16 parts
                split_bf16(pr[0], pr[kFwdPitch], pa[0], pb[0]);
                split_bf16(pr[8], pr[kFwdPitch + 8], pa[1], pb[1]);
                split_bf16(pr[8 * kFwdPitch], pr[9 * kFwdPitch], pa[2], pb[2]);
                split_bf16(pr[8 * kFwdPitch + 8], pr[9 * kFwdPitch + 8], pa[3], pb[3]);
                const uint16_t* vr = kv_tile + (16 * ks + 2 * t) * kPq + half * (kD / 2) + g;
#pragma unroll
                for (int nt = 0; nt < kNt; ++nt) {
                    const uint16_t* v0 = vr + 8 * nt;
                    const unsigned b0 = v0[0] | (static_cast<unsigned>(v0[kPq]) << 16);
                    const unsigned b1 = v0[8 * kPq] | (static_cast<unsigned>(v0[9 * kPq]) << 16);
                    mma_bf16(o[nt], pa, b0, b1);
                    mma_bf16(o[nt], pb, b0, b1);
                }
            }
        }
#pragma unroll
        for (int nt = 0; nt < kNt; ++nt) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int i = i0 + m0 + g + 8 * (e / 2);
                const int d = half * (kD / 2) + 8 * nt + 2 * t + e % 2;
                if (i >= p.T || d >= p.D) continue;
                const int64_t idx = p.lo.at(bh, p.H, i) + d;
                p.out[idx] = static_cast<c10::BFloat16>(o[nt][e]);
                if (p.out_f32 != nullptr) p.out_f32[idx] = o[nt][e];
            }
        }
    }
#else
    __trap();
#endif
}

template <typename scalar_t>
struct BackwardParams {
    const scalar_t* q;       // (B, H, T, D)
    const scalar_t* k;       // (B, H, T, D)
    const scalar_t* v;       // (B, H, T, D)
    const float* out;        // (B, H, T, D) the forward output in fp32
    const scalar_t* dout;    // (B, H, T, D)
    const float* log_sigma;  // (H)
    const unsigned* mask;    // (B, H, T, NW)
    const double* lse;       // (B, H, T)
    float* delta;            // (B, H, T) dO_i . O_i, written by the query pass for the key pass
    scalar_t* dq;            // (B, H, T, D)
    scalar_t* dk;            // (B, H, T, D)
    scalar_t* dv;            // (B, H, T, D)
    double* dlog_sigma;      // (B, H, n_qtiles) one partial sum per query tile
    Layout lq, lk, lv;       // of q, k, v
    Layout lo, lg, ld;       // of out, of dout, and of dq, dk, dv
    int H, T, D, W, NW;
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

__device__ __forceinline__ bool kept_bit(const unsigned* mask_row, int r) {
    return (__ldg(mask_row + (r >> 5)) >> (r & 31)) & 1u;
}

// Query-centric pass: per tile of kTile queries, over the key chunks of their windows,
// ds_ij = p_ij (dO_i . v_j - delta_i), dq_i = -2c sum_j ds_ij (q_i - k_j) and the per-tile sum
// of ds_ij * (-2 s_ij) for d log_sigma.
template <typename scalar_t, int kD>
__global__ void __launch_bounds__(kThreads, kD <= 64 ? 2 : 1)
    krause_backward_query_kernel(const BackwardParams<scalar_t> p) {
    constexpr int kP = kD + 4;
    using S = Dims<kD>;
    extern __shared__ float4 shared4[];
    float* q_tile = reinterpret_cast<float*>(shared4);  // (kTile, kP)
    float* do_tile = q_tile + kTile * kP;                 // (kTile, kP)
    float* k_tile = do_tile + kTile * kP;                 // (kTile, kP) key chunk
    float* v_tile = k_tile + kTile * kP;                  // (kTile, kP) value chunk
    float* ds_tile = v_tile + kTile * kP;                 // (kTile, kPitchS) [key][query]
    __shared__ float delta_tile[kTile];
    __shared__ double warp_part[kWarps];
    const int tr = threadIdx.x / 16, tc = threadIdx.x % 16;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int n_chunks = p.n_cols / kTile;
    Chunk<scalar_t, kD> chunk;

    for (int tile = blockIdx.x; tile < p.n_tiles; tile += gridDim.x) {
        const auto [bh, i0, coef] = backward_tile(p, tile);
        const int key0 = i0 - p.W + 1;

        __syncthreads();
        chunk.load(p.q + p.lq.slice(bh, p.H), p.lq.t, i0, p.T, p.D);
        chunk.store(q_tile);
        chunk.load(p.dout + p.lg.slice(bh, p.H), p.lg.t, i0, p.T, p.D);
        chunk.store(do_tile);
        __syncthreads();
        // delta_i in ascending d like pair_tile's dO . v: with one kept key (p = 1, O = v) ds is
        // then exactly 0, as in the ATen path.
        if (threadIdx.x < kTile) {
            const int i = i0 + threadIdx.x;
            float acc = 0.f;
            if (i < p.T) {
                const float* o = p.out + p.lo.at(bh, p.H, i);
                for (int d = 0; d < p.D; ++d) {
                    acc = __fmaf_rn(do_tile[threadIdx.x * kP + d], o[d], acc);
                }
                p.delta[static_cast<int64_t>(bh) * p.T + i] = acc;
            }
            delta_tile[threadIdx.x] = acc;
        }
        __syncthreads();
        double lse[4];
        float delta[4];
#pragma unroll
        for (int a = 0; a < 4; ++a) {
            const int i = i0 + tr * 4 + a;
            lse[a] = p.lse[static_cast<int64_t>(bh) * p.T + min(i, p.T - 1)];
            delta[a] = delta_tile[tr * 4 + a];
        }
        // Mask rows of this thread's queries; rows past T are never read.
        const unsigned* mask_rows = p.mask + (static_cast<int64_t>(bh) * p.T + i0 + tr * 4) * p.NW;

        float acc[4][S::kE] = {};
        float rowsum[4] = {};
        float ds_logp[4] = {}, p_logp[4] = {};  // this thread's keys' sum_j ds log p, p log p
        for (int c = 0; c < n_chunks; ++c) {
            // Two blocks share a multiprocessor: one's loads overlap the other's arithmetic.
            __syncthreads();
            chunk.load(p.k + p.lk.slice(bh, p.H), p.lk.t, key0 + c * kTile, p.T, p.D);
            chunk.store(k_tile);
            chunk.load(p.v + p.lv.slice(bh, p.H), p.lv.t, key0 + c * kTile, p.T, p.D);
            chunk.store(v_tile);
            __syncthreads();
            float dist[4][4] = {}, dp[4][4] = {};
            pair_tile<kD, true>(q_tile, k_tile, dist);
            pair_tile<kD, false>(do_tile, v_tile, dp);
            float ds[4][4];
#pragma unroll
            for (int a = 0; a < 4; ++a) {
                const bool live = i0 + tr * 4 + a < p.T;
#pragma unroll
                for (int b = 0; b < 4; ++b) {
                    const int r = c * kTile + tc + 16 * b - (tr * 4 + a);
                    float g = 0.f;
                    if (live && r >= 0 && r < p.W && kept_bit(mask_rows + a * p.NW, r)) {
                        const float s = -dist[a][b] * coef;
                        const float log_p = static_cast<float>(static_cast<double>(s) - lse[a]);
                        const float pr = expf(log_p);
                        g = pr * (dp[a][b] - delta[a]);
                        ds_logp[a] = __fmaf_rn(g, log_p, ds_logp[a]);
                        p_logp[a] = __fmaf_rn(pr, log_p, p_logp[a]);
                    }
                    ds[a][b] = g;
                }
            }
            store_patch(ds_tile, ds);
            __syncthreads();
            weighted_rows<kD, true>(ds_tile, k_tile, acc, rowsum);
        }
#pragma unroll
        for (int a = 0; a < 4; ++a) {
            const int i = i0 + tr * 4 + a;
            if (i >= p.T) continue;
#pragma unroll
            for (int n = 0; n < S::kE; ++n) {
                const int d = S::of(tc, n);
                if (d >= p.D) continue;
                const float qd = q_tile[(tr * 4 + a) * kP + d];
                p.dq[p.ld.at(bh, p.H, i) + d] =
                    static_cast<scalar_t>(-2.f * coef * (qd * rowsum[a] - acc[a][n]));
            }
        }
        // d log_sigma = -2 sum_ij ds_ij s_ij = -2 sum_i sum_j ds_ij (log p_ij - m_i) for any m_i,
        // as sum_j ds_ij = 0. An error e in delta_i shifts every ds_ij by -e p_ij; with
        // m_i = sum_j p_ij log p_ij that shift drops out, instead of meeting a factor |s| ~ 20.
        double dls = 0.0;
#pragma unroll
        for (int a = 0; a < 4; ++a) {
            float x = ds_logp[a], m = p_logp[a];
            for (int o = 8; o > 0; o >>= 1) {  // over the 16 threads that share query a
                x += __shfl_xor_sync(kFull, x, o);
                m += __shfl_xor_sync(kFull, m, o);
            }
            if (tc == 0) dls += static_cast<double>(x) - static_cast<double>(m) * rowsum[a];
        }
        dls = -2.0 * warp_sum(dls);
        if (lane == 0) warp_part[warp] = dls;
        __syncthreads();
        if (threadIdx.x == 0) {
            double total = 0.0;
            for (int w = 0; w < kWarps; ++w) total += warp_part[w];
            p.dlog_sigma[tile] = total;
        }
    }
}

// Key-centric pass: per tile of kTile keys, over the chunks of queries that can see them
// (i in [j, j + W - 1]), dv_j = sum_i p_ij dO_i and dk_j = 2c sum_i ds_ij (q_i - k_j).
template <typename scalar_t, int kD>
__global__ void __launch_bounds__(kThreads, kD <= 64 ? 2 : 1)
    krause_backward_key_kernel(const BackwardParams<scalar_t> p) {
    constexpr int kP = kD + 4;
    using S = Dims<kD>;
    extern __shared__ float4 shared4[];
    float* k_tile = reinterpret_cast<float*>(shared4);  // (kTile, kP) owned keys
    float* v_tile = k_tile + kTile * kP;                  // (kTile, kP) owned values
    float* q_tile = v_tile + kTile * kP;                  // (kTile, kP) query chunk
    float* do_tile = q_tile + kTile * kP;                 // (kTile, kP) dO chunk
    float* p_tile = do_tile + kTile * kP;                 // (kTile, kPitchS) [query][key]
    float* ds_tile = p_tile + kTile * kPitchS;            // (kTile, kPitchS) [query][key]
    const int tr = threadIdx.x / 16, tc = threadIdx.x % 16;
    Chunk<scalar_t, kD> chunk;

    for (int tile = blockIdx.x; tile < p.n_tiles; tile += gridDim.x) {
        const auto [bh, j0, coef] = backward_tile(p, tile);
        // Query chunks start at j0; those past T hold no query.
        const int n_chunks = min(p.n_cols / kTile, (p.T - j0 + kTile - 1) / kTile);

        __syncthreads();
        chunk.load(p.k + p.lk.slice(bh, p.H), p.lk.t, j0, p.T, p.D);
        chunk.store(k_tile);
        chunk.load(p.v + p.lv.slice(bh, p.H), p.lv.t, j0, p.T, p.D);
        chunk.store(v_tile);

        float dv[4][S::kE] = {}, dk[4][S::kE] = {};
        float colsum[4] = {}, unused[4];
        for (int c = 0; c < n_chunks; ++c) {
            const int ibase = j0 + c * kTile;
            __syncthreads();
            chunk.load(p.q + p.lq.slice(bh, p.H), p.lq.t, ibase, p.T, p.D);
            chunk.store(q_tile);
            chunk.load(p.dout + p.lg.slice(bh, p.H), p.lg.t, ibase, p.T, p.D);
            chunk.store(do_tile);
            __syncthreads();
            float dist[4][4] = {}, dp[4][4] = {};
            pair_tile<kD, true>(k_tile, q_tile, dist);
            pair_tile<kD, false>(v_tile, do_tile, dp);
            float pv[4][4], ds[4][4];
#pragma unroll
            for (int b = 0; b < 4; ++b) {
                const int i = ibase + tc + 16 * b;
                const bool live = i < p.T;
                const int64_t row = static_cast<int64_t>(bh) * p.T + min(i, p.T - 1);
                const double lse = p.lse[row];
                const float delta = p.delta[row];
                const unsigned* mask_row = p.mask + row * p.NW;
#pragma unroll
                for (int a = 0; a < 4; ++a) {
                    const int r = j0 + tr * 4 + a - i + p.W - 1;  // window slot of key j for i
                    float pr = 0.f, g = 0.f;
                    if (live && r >= 0 && r < p.W && kept_bit(mask_row, r)) {
                        const float s = -dist[a][b] * coef;
                        pr = probability(s, lse);
                        g = pr * (dp[a][b] - delta);
                    }
                    pv[a][b] = pr;
                    ds[a][b] = g;
                }
            }
            store_patch(p_tile, pv);
            store_patch(ds_tile, ds);
            __syncthreads();
            weighted_rows<kD, false>(p_tile, do_tile, dv, unused);
            weighted_rows<kD, true>(ds_tile, q_tile, dk, colsum);
        }
#pragma unroll
        for (int a = 0; a < 4; ++a) {
            const int j = j0 + tr * 4 + a;
            if (j >= p.T) continue;
#pragma unroll
            for (int n = 0; n < S::kE; ++n) {
                const int d = S::of(tc, n);
                if (d >= p.D) continue;
                const int64_t idx = p.ld.at(bh, p.H, j) + d;
                const float kd = k_tile[(tr * 4 + a) * kP + d];
                p.dk[idx] = static_cast<scalar_t>(2.f * coef * (dk[a][n] - kd * colsum[a]));
                p.dv[idx] = static_cast<scalar_t>(dv[a][n]);
            }
        }
    }
}

// ---- The backward passes on tensor cores (bf16, after the tensor-core forward, head size <= 64)
// Four warps per block, each owning 16 of the block's 64 rows (queries in the query pass, keys in
// the key pass); the other side streams through shared memory in chunks of 64 rows, consumed 16 at
// a time. The products over head dims (q.k for the distances, dO.v for dp) are mma with the
// block's rows as A operands, kept in registers for the whole tile (re-read from shared memory at
// each step from head size 64, where holding them spilled); the probabilities and ds are
// formed in the accumulator fragments, where the m16n8 accumulators of two adjacent 8-column
// tiles are exactly the A fragment of the next m16n8k16 product, so they feed the sums over the
// chunk (dq = ds.K, dv = P^T.dO, dk = ds^T.Q) without leaving registers, split into bf16 hi + lo
// parts like the forward's probabilities. The distances reuse the forward's norms, products and
// rounding, so the kept set and the probabilities are the forward's.

// The A fragments of rows m0 .. m0 + 15 of a bf16 tile (kPw 32-bit words per row), one per 16 dims.
template <int kD>
__device__ __forceinline__ void row_fragments(const unsigned* __restrict__ w, int m0,
                                              unsigned (&a)[kD / 16][4]) {
    constexpr int kPw = (kD + kMmaPad) / 2;
    const int g = threadIdx.x % 32 / 4, t = threadIdx.x % 4;
#pragma unroll
    for (int ks = 0; ks < kD / 16; ++ks) {
        a[ks][0] = w[(m0 + g) * kPw + 8 * ks + t];
        a[ks][1] = w[(m0 + g + 8) * kPw + 8 * ks + t];
        a[ks][2] = w[(m0 + g) * kPw + 8 * ks + 4 + t];
        a[ks][3] = w[(m0 + g + 8) * kPw + 8 * ks + 4 + t];
    }
}

// c[h] = sum over dims of rows(a) times tile rows n0 + 8h + g (B = tile^T), h = 0, 1: the
// accumulators of 16 chunk rows, in ascending steps of 16 dims like the forward's distances.
template <int kD>
__device__ __forceinline__ void pair_products(const unsigned (&a)[kD / 16][4],
                                              const unsigned* __restrict__ w, int n0,
                                              float (&c)[2][4]) {
    constexpr int kPw = (kD + kMmaPad) / 2;
    const int g = threadIdx.x % 32 / 4, t = threadIdx.x % 4;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
#pragma unroll
        for (int e = 0; e < 4; ++e) c[h][e] = 0.f;
#pragma unroll
        for (int ks = 0; ks < kD / 16; ++ks) {
            const unsigned* b = w + (n0 + 8 * h + g) * kPw + 8 * ks + t;
            mma_bf16(c[h], a[ks], b[0], b[4]);
        }
    }
}

// acc[n] += x . tile rows k0 .. k0 + 15 (B = the tile, its rows summed, dims 8n + column), x the
// A fragment of a 16 x 16 block given as accumulators (two m16n8 tiles), split into hi + lo.
template <int kD>
__device__ __forceinline__ void add_weighted_rows(const float (&x)[2][4],
                                                  const uint16_t* __restrict__ tile, int k0,
                                                  float (&acc)[kD / 8][4]) {
    constexpr int kPq = kD + kMmaPad;
    const int g = threadIdx.x % 32 / 4, t = threadIdx.x % 4;
    unsigned hi[4], lo[4];
    split_bf16(x[0][0], x[0][1], hi[0], lo[0]);
    split_bf16(x[0][2], x[0][3], hi[1], lo[1]);
    split_bf16(x[1][0], x[1][1], hi[2], lo[2]);
    split_bf16(x[1][2], x[1][3], hi[3], lo[3]);
    const uint16_t* r = tile + (k0 + 2 * t) * kPq + g;
#pragma unroll
    for (int n = 0; n < kD / 8; ++n) {
        const uint16_t* v = r + 8 * n;
        const unsigned b0 = v[0] | (static_cast<unsigned>(v[kPq]) << 16);
        const unsigned b1 = v[8 * kPq] | (static_cast<unsigned>(v[9 * kPq]) << 16);
        mma_bf16(acc[n], hi, b0, b1);
        mma_bf16(acc[n], lo, b0, b1);
    }
}

// kRows fp32 rows [row0, row0 + kRows) of one (b, h) slice, split into bf16 parts: hi into `hi`
// and what rounding left into `lo` (row pitch kD + kMmaPad); rows outside [0, T) and dims past D
// are zero.
template <int kD, int kRows>
__device__ __forceinline__ void load_rows_split(uint16_t* __restrict__ hi,
                                                uint16_t* __restrict__ lo,
                                                const float* __restrict__ src, int64_t stride,
                                                int row0, int T, int D) {
    for (int e = threadIdx.x; e < kRows * kD; e += kFwdThreads) {
        const int r = row0 + e / kD, d = e % kD;
        const float x =
            (d < D && r >= 0 && r < T) ? src[static_cast<int64_t>(r) * stride + d] : 0.f;
        const __nv_bfloat16 h = __float2bfloat16_rn(x);
        const __nv_bfloat16 l = __float2bfloat16_rn(x - __bfloat162float(h));
        hi[(e / kD) * (kD + kMmaPad) + e % kD] = *reinterpret_cast<const uint16_t*>(&h);
        lo[(e / kD) * (kD + kMmaPad) + e % kD] = *reinterpret_cast<const uint16_t*>(&l);
    }
}

// Sum over the four lanes of a fragment row group (the lanes that share g).
__device__ __forceinline__ float quad_sum(float x) {
    x += __shfl_xor_sync(kFull, x, 1);
    return x + __shfl_xor_sync(kFull, x, 2);
}

size_t mma_backward_shared_bytes(int kd) { return sizeof(uint16_t) * 4 * kTile * (kd + kMmaPad); }

// Query pass on tensor cores: what krause_backward_query_kernel computes (dq, delta, the
// per-tile d log_sigma), from the fragments described above.
template <int kD>
__global__ void __launch_bounds__(kFwdThreads, kD <= 32 ? 3 : 2)
    krause_backward_query_mma_kernel(const BackwardParams<c10::BFloat16> p) {
#if __CUDA_ARCH__ >= 800
    static_assert(kFwdThreads == 128 && kTile == 64, "four warps of 16 rows");
    constexpr int kPq = kD + kMmaPad;
    constexpr bool kHoldRows = kD <= 32;  // see the comment above the fragments' helpers
    extern __shared__ float4 shared4[];
    uint16_t* q_tile = reinterpret_cast<uint16_t*>(shared4);  // (kTile, kPq) the block's queries
    uint16_t* do_tile = q_tile + kTile * kPq;                  // (kTile, kPq) their dO
    uint16_t* k_tile = do_tile + kTile * kPq;                  // (kTile, kPq) key chunk
    uint16_t* v_tile = k_tile + kTile * kPq;                   // (kTile, kPq) value chunk
    __shared__ float q_norm[kTile], k_norm[kTile], delta_tile[kTile];
    __shared__ double warp_part[kFwdWarps];
    const auto* q_src = reinterpret_cast<const uint16_t*>(p.q);
    const auto* k_src = reinterpret_cast<const uint16_t*>(p.k);
    const auto* v_src = reinterpret_cast<const uint16_t*>(p.v);
    const auto* g_src = reinterpret_cast<const uint16_t*>(p.dout);
    const auto* kw = reinterpret_cast<const unsigned*>(k_tile);
    const auto* vw = reinterpret_cast<const unsigned*>(v_tile);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int g = lane / 4, t = lane % 4;
    const int m0 = 16 * warp;
    const int n_chunks = p.n_cols / kTile;

    for (int tile = blockIdx.x; tile < p.n_tiles; tile += gridDim.x) {
        const auto [bh, i0, coef] = backward_tile(p, tile);
        const int key0 = i0 - p.W + 1;

        __syncthreads();
        load_rows_bf16<kD, kTile>(q_tile, q_src + p.lq.slice(bh, p.H), p.lq.t, i0, p.T, p.D);
        load_rows_bf16<kD, kTile>(do_tile, g_src + p.lg.slice(bh, p.H), p.lg.t, i0, p.T, p.D);
        // The forward output O in the chunk tiles, as bf16 hi + lo, for delta.
        load_rows_split<kD, kTile>(k_tile, v_tile, p.out + p.lo.slice(bh, p.H), p.lo.t, i0, p.T,
                                   p.D);
        __syncthreads();
        row_norms<kD, kTile, kFwdWarps>(q_tile, kPq, q_norm);
        unsigned qa[kD / 16][4], da[kD / 16][4];  // da also forms delta below
        if constexpr (kHoldRows) {
            row_fragments<kD>(reinterpret_cast<const unsigned*>(q_tile), m0, qa);
        }
        row_fragments<kD>(reinterpret_cast<const unsigned*>(do_tile), m0, da);
        {
            // delta_i = dO_i . O_i, the diagonal of dO O^T, formed by the products that form
            // dp_ij = dO_i . v_j: with one kept key (p = 1, so O_i = v_j exactly and lo = 0)
            // ds = p (dp - delta) is then exactly 0, as in the ATen path.
            float hi[2][4], lo[2][4];
            pair_products<kD>(da, reinterpret_cast<const unsigned*>(k_tile), m0, hi);
            pair_products<kD>(da, reinterpret_cast<const unsigned*>(v_tile), m0, lo);
            if (t == g / 2) {  // the lane that holds (g, g) and (g + 8, g + 8)
#pragma unroll
                for (int x = 0; x < 2; ++x) {
                    const int row = m0 + g + 8 * x;
                    const float d = hi[x][2 * x + g % 2] + lo[x][2 * x + g % 2];
                    delta_tile[row] = d;
                    if (i0 + row < p.T) p.delta[static_cast<int64_t>(bh) * p.T + i0 + row] = d;
                }
            }
        }
        __syncthreads();
        // This thread's two query rows: m0 + g and m0 + g + 8.
        double lse[2];
        float delta[2], qn[2];
        bool live[2];
        const unsigned* mask_rows[2];
#pragma unroll
        for (int x = 0; x < 2; ++x) {
            const int row = m0 + g + 8 * x, i = i0 + row;
            live[x] = i < p.T;
            const int64_t at = static_cast<int64_t>(bh) * p.T + min(i, p.T - 1);
            lse[x] = p.lse[at];
            mask_rows[x] = p.mask + at * p.NW;
            delta[x] = delta_tile[row];
            qn[x] = q_norm[row];
        }

        float acc[kD / 8][4] = {};
        float rowsum[2] = {}, ds_logp[2] = {}, p_logp[2] = {};
        for (int c = 0; c < n_chunks; ++c) {
            __syncthreads();
            load_rows_bf16<kD, kTile>(k_tile, k_src + p.lk.slice(bh, p.H), p.lk.t,
                                      key0 + c * kTile, p.T, p.D);
            load_rows_bf16<kD, kTile>(v_tile, v_src + p.lv.slice(bh, p.H), p.lv.t,
                                      key0 + c * kTile, p.T, p.D);
            __syncthreads();
            row_norms<kD, kTile, kFwdWarps>(k_tile, kPq, k_norm);
            __syncthreads();
#pragma unroll 1
            for (int s = 0; s < kTile / 16; ++s) {
                float dot[2][4], dp[2][4], ds[2][4];
                if constexpr (!kHoldRows) {
                    row_fragments<kD>(reinterpret_cast<const unsigned*>(q_tile), m0, qa);
                    row_fragments<kD>(reinterpret_cast<const unsigned*>(do_tile), m0, da);
                }
                pair_products<kD>(qa, kw, 16 * s, dot);
                pair_products<kD>(da, vw, 16 * s, dp);
#pragma unroll
                for (int h = 0; h < 2; ++h) {
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        const int x = e / 2;
                        const int col = 16 * s + 8 * h + 2 * t + e % 2;  // key of the chunk
                        const int r = c * kTile + col - (m0 + g + 8 * x);  // its window slot
                        float gr = 0.f;
                        if (live[x] && r >= 0 && r < p.W && kept_bit(mask_rows[x], r)) {
                            const float dist = expanded_distance(qn[x], k_norm[col], dot[h][e]);
                            const float sc = -dist * coef;
                            const float log_p =
                                static_cast<float>(static_cast<double>(sc) - lse[x]);
                            const float pr = expf(log_p);
                            gr = pr * (dp[h][e] - delta[x]);
                            ds_logp[x] = __fmaf_rn(gr, log_p, ds_logp[x]);
                            p_logp[x] = __fmaf_rn(pr, log_p, p_logp[x]);
                        }
                        ds[h][e] = gr;
                        rowsum[x] += gr;
                    }
                }
                add_weighted_rows<kD>(ds, k_tile, 16 * s, acc);
            }
        }
        double dls = 0.0;
#pragma unroll
        for (int x = 0; x < 2; ++x) {
            rowsum[x] = quad_sum(rowsum[x]);
            const float xs = quad_sum(ds_logp[x]), m = quad_sum(p_logp[x]);
            if (t == 0) dls += static_cast<double>(xs) - static_cast<double>(m) * rowsum[x];
        }
#pragma unroll
        for (int n = 0; n < kD / 8; ++n) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int x = e / 2, row = m0 + g + 8 * x, d = 8 * n + 2 * t + e % 2;
                if (!live[x] || d >= p.D) continue;
                const float qd =
                    __uint_as_float(static_cast<unsigned>(q_tile[row * kPq + d]) << 16);
                p.dq[p.ld.at(bh, p.H, i0 + row) + d] =
                    static_cast<c10::BFloat16>(-2.f * coef * (qd * rowsum[x] - acc[n][e]));
            }
        }
        dls = -2.0 * warp_sum(dls);
        if (lane == 0) warp_part[warp] = dls;
        __syncthreads();
        if (threadIdx.x == 0) {
            double total = 0.0;
            for (int w = 0; w < kFwdWarps; ++w) total += warp_part[w];
            p.dlog_sigma[tile] = total;
        }
    }
#else
    __trap();
#endif
}

// Key pass on tensor cores: what krause_backward_key_kernel computes (dk, dv), from the
// fragments described above, with the keys as the block's rows.
template <int kD>
__global__ void __launch_bounds__(kFwdThreads, kD <= 32 ? 3 : 2)
    krause_backward_key_mma_kernel(const BackwardParams<c10::BFloat16> p) {
#if __CUDA_ARCH__ >= 800
    static_assert(kFwdThreads == 128 && kTile == 64, "four warps of 16 rows");
    constexpr int kPq = kD + kMmaPad;
    constexpr bool kHoldRows = kD <= 32;  // see the comment above the fragments' helpers
    extern __shared__ float4 shared4[];
    uint16_t* k_tile = reinterpret_cast<uint16_t*>(shared4);  // (kTile, kPq) the block's keys
    uint16_t* v_tile = k_tile + kTile * kPq;                   // (kTile, kPq) their values
    uint16_t* q_tile = v_tile + kTile * kPq;                   // (kTile, kPq) query chunk
    uint16_t* do_tile = q_tile + kTile * kPq;                  // (kTile, kPq) its dO
    __shared__ float q_norm[kTile], k_norm[kTile], delta_tile[kTile];
    __shared__ double lse_tile[kTile];
    const auto* q_src = reinterpret_cast<const uint16_t*>(p.q);
    const auto* k_src = reinterpret_cast<const uint16_t*>(p.k);
    const auto* v_src = reinterpret_cast<const uint16_t*>(p.v);
    const auto* g_src = reinterpret_cast<const uint16_t*>(p.dout);
    const auto* qw = reinterpret_cast<const unsigned*>(q_tile);
    const auto* dw = reinterpret_cast<const unsigned*>(do_tile);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int g = lane / 4, t = lane % 4;
    const int m0 = 16 * warp;

    for (int tile = blockIdx.x; tile < p.n_tiles; tile += gridDim.x) {
        const auto [bh, j0, coef] = backward_tile(p, tile);
        // Query chunks start at j0; those past T hold no query.
        const int n_chunks = min(p.n_cols / kTile, (p.T - j0 + kTile - 1) / kTile);

        __syncthreads();
        load_rows_bf16<kD, kTile>(k_tile, k_src + p.lk.slice(bh, p.H), p.lk.t, j0, p.T, p.D);
        load_rows_bf16<kD, kTile>(v_tile, v_src + p.lv.slice(bh, p.H), p.lv.t, j0, p.T, p.D);
        __syncthreads();
        row_norms<kD, kTile, kFwdWarps>(k_tile, kPq, k_norm);
        __syncthreads();
        unsigned ka[kD / 16][4], va[kD / 16][4];
        if constexpr (kHoldRows) {
            row_fragments<kD>(reinterpret_cast<const unsigned*>(k_tile), m0, ka);
            row_fragments<kD>(reinterpret_cast<const unsigned*>(v_tile), m0, va);
        }
        const float kn[2] = {k_norm[m0 + g], k_norm[m0 + g + 8]};

        float dv[kD / 8][4] = {}, dk[kD / 8][4] = {};
        float colsum[2] = {};
        for (int c = 0; c < n_chunks; ++c) {
            const int ibase = j0 + c * kTile;
            __syncthreads();
            load_rows_bf16<kD, kTile>(q_tile, q_src + p.lq.slice(bh, p.H), p.lq.t, ibase, p.T,
                                      p.D);
            load_rows_bf16<kD, kTile>(do_tile, g_src + p.lg.slice(bh, p.H), p.lg.t, ibase, p.T,
                                      p.D);
            if (threadIdx.x < kTile) {
                const int64_t at =
                    static_cast<int64_t>(bh) * p.T + min(ibase + threadIdx.x, p.T - 1);
                lse_tile[threadIdx.x] = p.lse[at];
                delta_tile[threadIdx.x] = p.delta[at];
            }
            __syncthreads();
            row_norms<kD, kTile, kFwdWarps>(q_tile, kPq, q_norm);
            __syncthreads();
#pragma unroll 1
            for (int s = 0; s < kTile / 16; ++s) {
                float dot[2][4], dp[2][4], pv[2][4], ds[2][4];
                if constexpr (!kHoldRows) {
                    row_fragments<kD>(reinterpret_cast<const unsigned*>(k_tile), m0, ka);
                    row_fragments<kD>(reinterpret_cast<const unsigned*>(v_tile), m0, va);
                }
                pair_products<kD>(ka, qw, 16 * s, dot);
                pair_products<kD>(va, dw, 16 * s, dp);
#pragma unroll
                for (int h = 0; h < 2; ++h) {
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        const int x = e / 2;
                        const int col = 16 * s + 8 * h + 2 * t + e % 2;  // query of the chunk
                        const int i = ibase + col;
                        const int r = j0 + m0 + g + 8 * x - i + p.W - 1;  // window slot of the key
                        float pr = 0.f, gr = 0.f;
                        if (i < p.T && r >= 0 && r < p.W &&
                            kept_bit(p.mask + (static_cast<int64_t>(bh) * p.T + i) * p.NW, r)) {
                            const float dist = expanded_distance(q_norm[col], kn[x], dot[h][e]);
                            const float sc = -dist * coef;
                            pr = probability(sc, lse_tile[col]);
                            gr = pr * (dp[h][e] - delta_tile[col]);
                        }
                        pv[h][e] = pr;
                        ds[h][e] = gr;
                        colsum[x] += gr;
                    }
                }
                add_weighted_rows<kD>(pv, do_tile, 16 * s, dv);
                add_weighted_rows<kD>(ds, q_tile, 16 * s, dk);
            }
        }
#pragma unroll
        for (int x = 0; x < 2; ++x) colsum[x] = quad_sum(colsum[x]);
#pragma unroll
        for (int n = 0; n < kD / 8; ++n) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int x = e / 2, row = m0 + g + 8 * x, j = j0 + row, d = 8 * n + 2 * t + e % 2;
                if (j >= p.T || d >= p.D) continue;
                const int64_t idx = p.ld.at(bh, p.H, j) + d;
                const float kd =
                    __uint_as_float(static_cast<unsigned>(k_tile[row * kPq + d]) << 16);
                p.dk[idx] = static_cast<c10::BFloat16>(2.f * coef * (dk[n][e] - kd * colsum[x]));
                p.dv[idx] = static_cast<c10::BFloat16>(dv[n][e]);
            }
        }
    }
#else
    __trap();
#endif
}

int padded_head_dim(int64_t D) { return D <= 32 ? 32 : D <= 64 ? 64 : 128; }

size_t forward_shared_bytes(int kd, int n_cols, bool scores_in_shared) {
    const size_t tiles = (kFwdRows + kTile) * (kd + 4);
    return sizeof(float) * (tiles + (scores_in_shared ? size_t(n_cols) * kFwdPitch : 0));
}

size_t query_pass_shared_bytes(int kd) {
    return sizeof(float) * (4 * kTile * (kd + 4) + kTile * kPitchS);
}

size_t key_pass_shared_bytes(int kd) {
    return sizeof(float) * (4 * kTile * (kd + 4) + 2 * kTile * kPitchS);
}

template <typename Kernel>
void set_shared_limit(Kernel kernel, size_t bytes) {
    C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(bytes)));
}

// Sets the kernel's dynamic shared memory limit, launches it on the stream, checks the launch.
template <typename Params>
void launch(void (*kernel)(Params), int grid, int threads, size_t bytes, cudaStream_t stream,
            const Params& p) {
    set_shared_limit(kernel, bytes);
    kernel<<<grid, threads, bytes, stream>>>(p);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
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

// mma: bf16 scores on tensor cores (krause_forward_mma_kernel).
template <typename scalar_t>
void launch_forward(const ForwardParams<scalar_t>& p, int kd, bool mma, bool in_shared, int grid,
                    size_t bytes, cudaStream_t stream) {
    dispatch_head_dim(kd, [&](auto head) {
        constexpr int kD = decltype(head)::value;
        auto kernel = in_shared ? krause_forward_kernel<scalar_t, kD, true>
                                : krause_forward_kernel<scalar_t, kD, false>;
        if constexpr (std::is_same_v<scalar_t, c10::BFloat16>) {
            if (mma) {
                kernel = in_shared ? krause_forward_mma_kernel<kD, true>
                                   : krause_forward_mma_kernel<kD, false>;
            }
        }
        launch(kernel, grid, kFwdThreads, bytes, stream, p);
    });
}

// mma: the forward ran on tensor cores (bf16 only); up to head size 64 the backward passes then
// run on tensor cores too, recomputing the forward's distances bit for bit. At 128 (whose
// fragments would not fit the registers) the CUDA-core passes run, with distances that differ
// from the forward's by float rounding, which the tests allow for.
template <typename scalar_t>
void launch_backward(const BackwardParams<scalar_t>& p, int kd, bool mma, cudaStream_t stream) {
    dispatch_head_dim(kd, [&](auto head) {
        constexpr int kD = decltype(head)::value;
        if constexpr (std::is_same_v<scalar_t, c10::BFloat16> && kD <= 64) {
            if (mma) {
                const size_t bytes = mma_backward_shared_bytes(kD);
                launch(krause_backward_query_mma_kernel<kD>, p.n_tiles, kFwdThreads, bytes, stream,
                       p);
                launch(krause_backward_key_mma_kernel<kD>, p.n_tiles, kFwdThreads, bytes, stream,
                       p);
                return;
            }
        }
        launch(krause_backward_query_kernel<scalar_t, kD>, p.n_tiles, kThreads,
               query_pass_shared_bytes(kD), stream, p);
        launch(krause_backward_key_kernel<scalar_t, kD>, p.n_tiles, kThreads,
               key_pass_shared_bytes(kD), stream, p);
    });
}

// Calls f with a value of the C++ type of a fused dtype.
template <typename F>
void dispatch_dtype(at::ScalarType type, F&& f) {
    switch (type) {
        case at::kFloat: f(float{}); break;
        case at::kBFloat16: f(c10::BFloat16{}); break;
        case at::kHalf: f(c10::Half{}); break;
        default: TORCH_CHECK(false, "krause_attention_cuda: unsupported dtype ", type);
    }
}

// The kernels' view of a (B, H, T, D) operand: rows may lie anywhere, elements of a row not.
Layout layout_of(const at::Tensor& t) {
    TORCH_INTERNAL_ASSERT(t.dim() == 4 && (t.stride(3) == 1 || t.size(3) <= 1));
    return {t.stride(0), t.stride(1), t.stride(2)};
}

at::Tensor rows_readable(const at::Tensor& t) { return t.stride(3) == 1 ? t : t.contiguous(); }

// A (B, H, T, D) tensor stored as (B, T, H, D), so that merging its heads is a free view.
at::Tensor empty_heads_last(const at::Tensor& like, at::ScalarType type) {
    return at::empty({like.size(0), like.size(2), like.size(1), like.size(3)},
                     like.options().dtype(type))
        .transpose(1, 2);
}

struct ForwardResult {
    at::Tensor out;      // (B, H, T, D) in v's dtype, stored heads last
    at::Tensor out_f32;  // (B, H, T, D) fp32, stored heads last; undefined when out is fp32 or
                         // nothing is saved
    at::Tensor mask;     // (B, H, T, NW) int32 bits; undefined when nothing is saved
    at::Tensor lse;      // (B, H, T) fp64; undefined when nothing is saved
    bool tensor_cores = false;  // the scores came from the tensor-core kernel
};

int checked_int(int64_t x, const char* what) {
    TORCH_CHECK(x <= std::numeric_limits<int>::max(), "krause_attention_cuda: ", what, " = ", x,
                " is too large");
    return static_cast<int>(x);
}

// The forward op's one tensor-facing function: checks, allocations, launch.
ForwardResult krause_forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                             const at::Tensor& log_sigma, int64_t window, int64_t top_k,
                             bool for_backward) {
    TORCH_CHECK(q.dim() == 4, "krause_attention_cuda: q must be (B, H, T, D), got ", q.sizes());
    TORCH_CHECK(k.sizes() == q.sizes() && v.sizes() == q.sizes(),
                "krause_attention_cuda: q, k, v shapes differ: ", q.sizes(), k.sizes(), v.sizes());
    TORCH_CHECK(q.is_cuda() && k.device() == q.device() && v.device() == q.device() &&
                    log_sigma.device() == q.device(),
                "krause_attention_cuda: q, k, v and log_sigma must be on one GPU");
    TORCH_CHECK(k.scalar_type() == q.scalar_type() && v.scalar_type() == q.scalar_type(),
                "krause_attention_cuda: q, k, v dtypes differ");
    TORCH_CHECK(log_sigma.dim() == 1 && log_sigma.size(0) == q.size(1),
                "krause_attention_cuda: log_sigma must be (H) with H = ", q.size(1));
    TORCH_CHECK(window >= 1, "krause_attention_cuda: window must be >= 1, got ", window);
    TORCH_CHECK(top_k >= 1, "krause_attention_cuda: top_k must be >= 1, got ", top_k);
    TORCH_CHECK(q.size(3) <= kMaxHeadDim, "krause_attention_cuda: head size ", q.size(3),
                " > ", kMaxHeadDim);
    const c10::cuda::CUDAGuard guard(q.device());
    const auto qc = rows_readable(q), kc = rows_readable(k), vc = rows_readable(v);
    const auto ls = log_sigma.to(at::kFloat).contiguous();  // (H)

    const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3);
    TORCH_CHECK(B * H * T <= std::numeric_limits<int>::max(),
                "krause_attention_cuda: B * H * T = ", B * H * T, " is too large");
    const int W = static_cast<int>(std::min(window, std::max<int64_t>(T, 1)));
    const int K = static_cast<int>(std::min<int64_t>(top_k, W));
    const int NW = (W + 31) / 32;
    const int n_qtiles = static_cast<int>((T + kFwdRows - 1) / kFwdRows);
    const int n_tiles = checked_int(B * H * n_qtiles, "tiles");
    const int n_cols = (kFwdRows + W - 1 + kTile - 1) / kTile * kTile;
    const int kd = padded_head_dim(D);

    ForwardResult r;
    r.out = empty_heads_last(vc, vc.scalar_type());
    if (for_backward) {
        if (vc.scalar_type() != at::kFloat) r.out_f32 = empty_heads_last(vc, at::kFloat);
        r.mask = at::empty({B, H, T, NW}, q.options().dtype(at::kInt));
        r.lse = at::empty({B, H, T}, q.options().dtype(at::kDouble));
    }
    if (n_tiles == 0) return r;

    const auto* props = at::cuda::getCurrentDeviceProperties();
    const bool mma = vc.scalar_type() == at::kBFloat16 && props->major >= 8 &&
                     krause_tensor_cores_enabled();
    auto shared_bytes = [&](bool scores_in_shared) {
        return mma ? mma_forward_shared_bytes(kd, n_cols, scores_in_shared)
                   : forward_shared_bytes(kd, n_cols, scores_in_shared);
    };
    r.tensor_cores = mma;
    const bool in_shared = shared_bytes(true) <= props->sharedMemPerBlockOptin;
    const size_t bytes = shared_bytes(in_shared);
    // Score tiles that outgrow shared memory live in a per-block workspace: a grid of a few
    // blocks per multiprocessor keeps it O(W), not O(T * W).
    const int grid = in_shared ? n_tiles : std::min(n_tiles, 4 * props->multiProcessorCount);
    at::Tensor workspace;
    if (!in_shared) {
        workspace = at::empty({int64_t(grid) * n_cols * kFwdPitch}, q.options().dtype(at::kFloat));
    }
    const auto stream = at::cuda::getCurrentCUDAStream();
    dispatch_dtype(vc.scalar_type(), [&](auto tag) {
        using scalar_t = decltype(tag);
        ForwardParams<scalar_t> p;
        p.q = qc.data_ptr<scalar_t>();
        p.k = kc.data_ptr<scalar_t>();
        p.v = vc.data_ptr<scalar_t>();
        p.log_sigma = ls.data_ptr<float>();
        p.out = r.out.data_ptr<scalar_t>();
        p.out_f32 = r.out_f32.defined() ? r.out_f32.data_ptr<float>() : nullptr;
        p.mask = r.mask.defined() ? reinterpret_cast<unsigned*>(r.mask.data_ptr<int32_t>())
                                  : nullptr;
        p.lse = r.lse.defined() ? r.lse.data_ptr<double>() : nullptr;
        p.scores = workspace.defined() ? workspace.data_ptr<float>() : nullptr;
        p.lq = layout_of(qc);
        p.lk = layout_of(kc);
        p.lv = layout_of(vc);
        p.lo = layout_of(r.out);
        p.H = static_cast<int>(H);
        p.T = static_cast<int>(T);
        p.D = static_cast<int>(D);
        p.W = W;
        p.K = K;
        p.NW = NW;
        p.n_qtiles = n_qtiles;
        p.n_tiles = n_tiles;
        p.n_cols = n_cols;
        launch_forward(p, kd, mma, in_shared, grid, bytes, stream.stream());
    });
    return r;
}

// The backward op's one tensor-facing function: writes dq, dk, dv (B, H, T, D views of one
// layout, e.g. the thirds of one fused gradient) and returns d log_sigma (H) in fp32.
// out_f32: the forward output in fp32; tensor_cores: how the forward formed the scores.
at::Tensor krause_backward(const at::Tensor& dout, const at::Tensor& q, const at::Tensor& k,
                           const at::Tensor& v, const at::Tensor& out_f32,
                           const at::Tensor& log_sigma, const at::Tensor& mask,
                           const at::Tensor& lse, int64_t window, bool tensor_cores,
                           at::Tensor& dq, at::Tensor& dk, at::Tensor& dv) {
    TORCH_CHECK(dout.sizes() == q.sizes(), "krause_attention_cuda backward: grad shape ",
                dout.sizes(), " differs from ", q.sizes());
    TORCH_CHECK(out_f32.scalar_type() == at::kFloat && mask.scalar_type() == at::kInt &&
                    lse.scalar_type() == at::kDouble,
                "krause_attention_cuda backward: saved tensors have unexpected dtypes");
    TORCH_CHECK(dout.device() == q.device(), "krause_attention_cuda backward: grad on ",
                dout.device(), ", inputs on ", q.device());
    const Layout ld = layout_of(dq);
    TORCH_INTERNAL_ASSERT(dk.strides() == dq.strides() && dv.strides() == dq.strides());
    const c10::cuda::CUDAGuard guard(q.device());
    const auto qc = rows_readable(q), kc = rows_readable(k), vc = rows_readable(v);
    const auto gc = rows_readable(dout.to(q.scalar_type()));
    const auto oc = rows_readable(out_f32);
    const auto ls = log_sigma.to(at::kFloat).contiguous();  // (H)
    const auto mc = mask.contiguous();                       // (B, H, T, NW)
    const auto lc = lse.contiguous();                        // (B, H, T)

    const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3);
    const int W = static_cast<int>(std::min(window, std::max<int64_t>(T, 1)));
    const int n_qtiles = static_cast<int>((T + kTile - 1) / kTile);
    const int n_tiles = checked_int(B * H * n_qtiles, "tiles");
    const int n_cols = (kTile + W - 1 + kTile - 1) / kTile * kTile;
    const int kd = padded_head_dim(D);

    const auto delta = at::empty({B, H, T}, q.options().dtype(at::kFloat));  // (B, H, T)
    const auto parts = at::zeros({B, H, n_qtiles}, q.options().dtype(at::kDouble));
    if (n_tiles > 0) {
        const auto stream = at::cuda::getCurrentCUDAStream();
        dispatch_dtype(qc.scalar_type(), [&](auto tag) {
            using scalar_t = decltype(tag);
            BackwardParams<scalar_t> p;
            p.q = qc.data_ptr<scalar_t>();
            p.k = kc.data_ptr<scalar_t>();
            p.v = vc.data_ptr<scalar_t>();
            p.out = oc.data_ptr<float>();
            p.dout = gc.data_ptr<scalar_t>();
            p.log_sigma = ls.data_ptr<float>();
            p.mask = reinterpret_cast<const unsigned*>(mc.data_ptr<int32_t>());
            p.lse = lc.data_ptr<double>();
            p.delta = delta.data_ptr<float>();
            p.dq = dq.data_ptr<scalar_t>();
            p.dk = dk.data_ptr<scalar_t>();
            p.dv = dv.data_ptr<scalar_t>();
            p.dlog_sigma = parts.data_ptr<double>();
            p.lq = layout_of(qc);
            p.lk = layout_of(kc);
            p.lv = layout_of(vc);
            p.lo = layout_of(oc);
            p.lg = layout_of(gc);
            p.ld = ld;
            p.H = static_cast<int>(H);
            p.T = static_cast<int>(T);
            p.D = static_cast<int>(D);
            p.W = W;
            p.NW = static_cast<int>(mask.size(3));
            p.n_qtiles = n_qtiles;
            p.n_tiles = n_tiles;
            p.n_cols = n_cols;
            launch_backward(p, kd, tensor_cores, stream.stream());
        });
    }
    // Per-tile partial sums in fp64, reduced in a fixed order: deterministic.
    return parts.sum(at::IntArrayRef{0, 2}).to(at::kFloat);
}

// q, k, v (B, H, T, D) as separate tensors.
class KrauseAttentionFunction : public torch::autograd::Function<KrauseAttentionFunction> {
public:
    static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& q,
                              const at::Tensor& k, const at::Tensor& v,
                              const at::Tensor& log_sigma, int64_t window, int64_t top_k) {
        auto r = krause_forward(q, k, v, log_sigma, window, top_k, /*for_backward=*/true);
        const auto out_f32 = r.out_f32.defined() ? r.out_f32 : r.out;
        ctx->save_for_backward({q, k, v, log_sigma, out_f32, r.mask, r.lse});
        ctx->saved_data["window"] = window;
        ctx->saved_data["tensor_cores"] = r.tensor_cores;
        return r.out;
    }

    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                   torch::autograd::variable_list grads) {
        const auto saved = ctx->get_saved_variables();
        const auto& q = saved[0];
        const auto& log_sigma = saved[3];
        if (!grads[0].defined()) {
            return {at::zeros_like(q), at::zeros_like(q), at::zeros_like(q),
                    at::zeros_like(log_sigma), at::Tensor(), at::Tensor()};
        }
        // Heads last, like the forward output: the gradient of split heads is then a free view.
        auto dq = empty_heads_last(q, q.scalar_type());
        auto dk = empty_heads_last(q, q.scalar_type());
        auto dv = empty_heads_last(q, q.scalar_type());
        const auto dls = krause_backward(grads[0], q, saved[1], saved[2], saved[4], log_sigma,
                                         saved[5], saved[6], ctx->saved_data["window"].toInt(),
                                         ctx->saved_data["tensor_cores"].toBool(), dq, dk, dv);
        return {dq, dk, dv, dls.to(log_sigma.scalar_type()), at::Tensor(), at::Tensor()};
    }
};

// q, k, v as the thirds of one fused projection (B, T, 3 * H * D): the kernels read them in place
// and write their gradients into one (B, T, 3 * H * D) tensor, so no head is ever transposed.
class KrausePackedFunction : public torch::autograd::Function<KrausePackedFunction> {
public:
    static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& qkv,
                              const at::Tensor& log_sigma, int64_t heads, int64_t window,
                              int64_t top_k) {
        const auto x = qkv.contiguous();
        const auto parts = unpack_qkv(x, heads);
        auto r = krause_forward(parts[0], parts[1], parts[2], log_sigma, window, top_k,
                                /*for_backward=*/true);
        const auto out_f32 = r.out_f32.defined() ? r.out_f32 : r.out;
        ctx->save_for_backward({x, log_sigma, out_f32, r.mask, r.lse});
        ctx->saved_data["heads"] = heads;
        ctx->saved_data["window"] = window;
        ctx->saved_data["tensor_cores"] = r.tensor_cores;
        return merge_heads(r.out);
    }

    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                   torch::autograd::variable_list grads) {
        const auto saved = ctx->get_saved_variables();
        const auto& x = saved[0];
        const auto& log_sigma = saved[1];
        if (!grads[0].defined()) {
            return {at::zeros_like(x), at::zeros_like(log_sigma), at::Tensor(), at::Tensor(),
                    at::Tensor()};
        }
        const int64_t heads = ctx->saved_data["heads"].toInt();
        const auto parts = unpack_qkv(x, heads);
        const auto& q = parts[0];
        const auto dout = grads[0]
                              .reshape({q.size(0), q.size(2), q.size(1), q.size(3)})
                              .transpose(1, 2);  // (B, H, T, D)
        auto dqkv = at::empty_like(x);
        auto d = unpack_qkv(dqkv, heads);
        const auto dls = krause_backward(dout, q, parts[1], parts[2], saved[2], log_sigma,
                                         saved[3], saved[4], ctx->saved_data["window"].toInt(),
                                         ctx->saved_data["tensor_cores"].toBool(), d[0], d[1],
                                         d[2]);
        return {dqkv, dls.to(log_sigma.scalar_type()), at::Tensor(), at::Tensor(), at::Tensor()};
    }
};

bool needs_grad(std::initializer_list<const at::Tensor*> inputs) {
    if (!at::GradMode::is_enabled()) return false;
    for (const auto* t : inputs) {
        if (t->requires_grad()) return true;
    }
    return false;
}

}  // namespace

at::Tensor krause_attention_cuda(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                 const at::Tensor& log_sigma, int64_t window, int64_t top_k) {
    // fp64 is the tests' exact reference, and wide heads are rare: both keep the ATen path.
    if (q.scalar_type() == at::kDouble || (q.dim() == 4 && q.size(3) > kMaxHeadDim)) {
        return krause_attention_windowed(q, k, v, log_sigma, window, top_k);
    }
    if (!needs_grad({&q, &k, &v, &log_sigma})) {
        return krause_forward(q, k, v, log_sigma, window, top_k, false).out;
    }
    return KrauseAttentionFunction::apply(q, k, v, log_sigma, window, top_k);
}

at::Tensor krause_attention_packed_cuda(const at::Tensor& qkv, int64_t heads,
                                        const at::Tensor& log_sigma, int64_t window,
                                        int64_t top_k) {
    TORCH_CHECK(qkv.dim() == 3 && heads >= 1 && qkv.size(2) % (3 * heads) == 0,
                "krause_attention_packed_cuda: qkv must be (B, T, 3 * H * D) with H = ", heads,
                ", got ", qkv.sizes());
    if (qkv.scalar_type() == at::kDouble || qkv.size(2) / (3 * heads) > kMaxHeadDim) {
        const auto parts = unpack_qkv(qkv, heads);
        return merge_heads(
            krause_attention_windowed(parts[0], parts[1], parts[2], log_sigma, window, top_k));
    }
    if (!needs_grad({&qkv, &log_sigma})) {
        const auto parts = unpack_qkv(qkv, heads);
        return merge_heads(
            krause_forward(parts[0], parts[1], parts[2], log_sigma, window, top_k, false).out);
    }
    return KrausePackedFunction::apply(qkv, log_sigma, heads, window, top_k);
}

}  // namespace krause
