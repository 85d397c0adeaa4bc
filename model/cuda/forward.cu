// The forward kernels of fused Krause attention: per tile of queries, the scores of their
// windows, the exact top-K and softmax of each window (select.cuh) and the weighted sum of
// values; on CUDA cores for every dtype, and on tensor cores for bf16, which read the squared
// norms of the rows of q and k from the row norms kernel here (as the tensor-core backward does).
#include "model/cuda/params.cuh"
#include "model/cuda/select.cuh"
#include "model/kernels.h"

#include <algorithm>

namespace krause::fused {
namespace {

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

// Top-K and softmax of query i (< T) by one warp, its slots read as top_k_softmax reads them and
// its probabilities handed to put; stores the query's threshold and lse for the backward.
// Windows of more than 256 keys are re-read from memory (kSlots = 0).
template <typename scalar_t, typename Put>
__device__ __forceinline__ void top_k_query(const ForwardParams<scalar_t>& p, int bh, int i,
                                            float* slot0, int m_stride, Put put) {
    const int lo = max(0, p.W - 1 - i);
    RowStats stats;
    if (lo == 0 && p.W == 4 * 32) {
        stats = top_k_softmax<4, true>(slot0, m_stride, lo, p.W, p.K, put);
    } else if (lo == 0 && p.W == 8 * 32) {
        stats = top_k_softmax<8, true>(slot0, m_stride, lo, p.W, p.K, put);
    } else if (p.W <= 4 * 32) {
        stats = top_k_softmax<4, false>(slot0, m_stride, lo, p.W, p.K, put);
    } else if (p.W <= 8 * 32) {
        stats = top_k_softmax<8, false>(slot0, m_stride, lo, p.W, p.K, put);
    } else {
        stats = top_k_softmax<0, false>(slot0, m_stride, lo, p.W, p.K, put);
    }
    if (p.lse != nullptr && threadIdx.x % 32 == 0) {
        const int64_t row = static_cast<int64_t>(bh) * p.T + i;
        p.lse[row] = make_float2(stats.lse_hi, stats.lse_lo);
        p.threshold[row] = make_uint2(stats.tau, static_cast<unsigned>(stats.r_last));
    }
}

// The middle phase of the CUDA-core forward, one warp per query of the tile at i0: top-K and
// softmax of its column of the score tile (scores[key row][query]), overwritten with the
// probabilities.
template <typename scalar_t>
__device__ __forceinline__ void top_k_columns(float* scores, const ForwardParams<scalar_t>& p,
                                              int bh, int i0) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    for (int qi = warp; qi < kFwdRows; qi += kFwdWarps) {
        const int i = i0 + qi;
        // Slot r of query qi lies in key row qi + r.
        float* slot0 = scores + (qi + lane) * kFwdPitch + qi;
        const int m_stride = 32 * kFwdPitch;
        if (i >= p.T) {
            for (int m = 0; lane + 32 * m < p.W; ++m) slot0[m * m_stride] = 0.f;
            continue;
        }
        top_k_query(p, bh, i, slot0, m_stride, [&](int m, float pr) { slot0[m * m_stride] = pr; });
    }
}

// One block per tile of kFwdRows queries of one (b, h), over the key span [i0 - W + 1, i0 +
// kFwdRows): (1) distances of the tile against each key chunk into a transposed score tile
// (row = key), (2) one warp per query: top-K, softmax, threshold and lse, (3) the probabilities
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

        top_k_columns(scores, p, bh, i0);

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
            const int64_t row_at = p.lo.at(bh, p.H, i);  // formed once per row
#pragma unroll
            for (int n = 0; n < S::kE; ++n) {
                const int d = S::of(tc, n);
                if (d >= p.D) continue;
                const int64_t idx = row_at + d;
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
// parts, both on mma.sync m16n8k16; top-K and softmax are the CUDA-core kernel's. Eight warps
// share the tile's score tile (twice the warps of the CUDA-core kernel for the same shared
// memory): each owns 16 queries (m-tile warp % 2) and a quarter of the key chunk (scores) or of
// the head dims (output), and a query in top-K. The key chunks (with their rows' norms) and then
// the value chunks stream through two buffers: chunk j + 1 is copied while chunk j is used (and
// the first value chunk during top-K). The score tile is laid out query by key (row qi: the
// fp32 scores of keys key0 .. key0 + n_cols - 1, kMmaRowPad floats more), so that top-K reads
// its query's row without bank conflicts and then writes over it, in place, the bf16 high parts
// of its probabilities (keys 0 .. n_cols - 1) followed by their low parts: the A fragments of
// P.V, loaded by ldmatrix. In place needs the whole window in registers first: W <= 256.
// At kD = 64 three blocks of eight warps fit beside their score tiles (80 registers): 24 warps
// per multiprocessor, where blocks of four warps were held to 12 by shared memory.
constexpr int kMmaFwdThreads = 256;
constexpr int kMmaFwdWarps = kMmaFwdThreads / 32;
constexpr int kMmaRowPad = 4;  // rows of 4 n_cols + 16 bytes: eight rows hit distinct banks
// The tensor-core forward writes each query's probabilities over its scores in place, which is
// right only while top_k_query holds the whole window in registers (up to 8 x 32 keys).
static_assert(kTensorCoreMaxWindow <= 8 * 32, "in-place probabilities need a cached window");

// The middle phase of the tensor-core forward: one warp per query of the tile at i0 reads the
// scores of its window from its row of the score tile and writes the row's probabilities as
// bf16 high parts, then low parts (0 outside the window).
__device__ __forceinline__ void top_k_rows(float* scores, int pitch,
                                           const ForwardParams<c10::BFloat16>& p, int bh,
                                           int i0) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    for (int qi = warp; qi < kFwdRows; qi += kMmaFwdWarps) {
        const int i = i0 + qi;
        float* row = scores + qi * pitch;  // slot r of query qi: key row qi + r
        auto* hi = reinterpret_cast<__nv_bfloat16*>(row);
        __nv_bfloat16* lo = hi + p.n_cols;
        if (i >= p.T) {
            for (int x = lane; x < p.n_cols; x += 32) row[x] = 0.f;  // hi and lo both 0
            continue;
        }
        top_k_query(p, bh, i, row + qi + lane, 32, [&](int m, float pr) {
            const int x = qi + lane + 32 * m;
            // A high and a low part hold pr to about 16 bits, where bf16 alone would give each
            // probability a relative error of 2^-9. That error would reach the backward pass
            // through the output (delta_i = dO_i . O_i) and raise the error of dq up to about
            // three times ATen's.
            const __nv_bfloat16 h = __float2bfloat16_rn(pr);
            hi[x] = h;
            lo[x] = __float2bfloat16_rn(pr - __bfloat162float(h));
        });
        // The n_cols - W keys outside the window, before it (x < qi) and after it, in one loop.
        const __nv_bfloat16 zero = __float2bfloat16_rn(0.f);
        for (int y = lane; y < p.n_cols - p.W; y += 32) {
            const int x = y < qi ? y : y + p.W;
            hi[x] = lo[x] = zero;
        }
    }
}

size_t mma_forward_shared_bytes(int kd, int n_cols, bool scores_in_shared) {
    return sizeof(float) * (kFwdRows + 2 * kTile) +
           sizeof(uint16_t) * (kFwdRows + 2 * kTile) * (kd + kMmaPad) +
           (scores_in_shared ? sizeof(float) * kFwdRows * (n_cols + kMmaRowPad) : 0);
}

template <int kD, bool kWide>
__global__ void __launch_bounds__(kMmaFwdThreads, kD <= 32 ? 4 : kD <= 64 ? 3 : 2)
    krause_forward_mma_kernel(const ForwardParams<c10::BFloat16> p) {
#if __CUDA_ARCH__ >= 800
    constexpr int kPq = kD + kMmaPad;  // bf16 per tile row
    constexpr int kBy = kMmaFwdThreads;
    extern __shared__ float4 shared4[];
    float* q_norm = reinterpret_cast<float*>(shared4);                // (kFwdRows)
    float* k_norms = q_norm + kFwdRows;                               // 2 x (kTile)
    uint16_t* q_tile = reinterpret_cast<uint16_t*>(k_norms + 2 * kTile);  // (kFwdRows, kPq)
    uint16_t* kv_tiles = q_tile + kFwdRows * kPq;                     // 2 x (kTile, kPq)
    float* scores = reinterpret_cast<float*>(kv_tiles + 2 * kTile * kPq);  // (kFwdRows, pitch)
    const auto* q_src = reinterpret_cast<const uint16_t*>(p.q);
    const auto* k_src = reinterpret_cast<const uint16_t*>(p.k);
    const auto* v_src = reinterpret_cast<const uint16_t*>(p.v);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int g = lane / 4, t = lane % 4;  // fragment row group and column pair
    const int m0 = 16 * (warp % 2);        // this warp's first query of the tile
    const int quarter = warp / 2;          // which quarter of the keys (scores) or dims (output)
    const int n_chunks = p.n_cols / kTile;
    const int pitch = p.n_cols + kMmaRowPad;  // floats per row of the score tile
    auto buffer = [&](int j) { return kv_tiles + j % 2 * kTile * kPq; };
    // The probabilities as two bf16 tiles (rows qi, keys x) in the score tile's rows.
    const auto* p_hi = reinterpret_cast<const uint16_t*>(scores);
    const uint16_t* p_lo = p_hi + p.n_cols;

    // The grid is (query tile, head, image), the images past 65535 looped over: a block finds its
    // slices without dividing a tile index.
    const int h = blockIdx.y, i0 = blockIdx.x * kFwdRows, key0 = i0 - p.W + 1;
    const float coef = 0.5f * expf(-2.f * p.log_sigma[h]);
    for (int b = blockIdx.z; b < p.B; b += gridDim.z) {
        const int bh = b * p.H + h;
        const int64_t slice0 = static_cast<int64_t>(bh) * p.T;  // (b, h) in the per-row arrays
        const uint16_t* k_rows = k_src + p.lk.slice_of(b, h);   // row 0 of the (b, h) keys
        const uint16_t* v_rows = v_src + p.lv.slice_of(b, h);
        // Chunk j of the tile: the key chunks 0 .. n_chunks - 1, then the value chunks.
        auto start_rows = [&](int j) {
            const bool keys = j < n_chunks;
            start_rows_bf16<kD, kTile, kWide, kBy>(
                buffer(j), keys ? k_rows : v_rows, keys ? p.lk.t : p.lv.t,
                key0 + (keys ? j : j - n_chunks) * kTile, p.T, p.D);
        };
        auto start_norms = [&](int j) {
            if (j < n_chunks) {
                start_row_values<kTile>(k_norms + j % 2 * kTile, p.k_norm + slice0,
                                        key0 + j * kTile, p.T);
            }
        };
        auto start_chunk = [&](int j) {
            start_rows(j);
            start_norms(j);
            commit_copies();
        };

        __syncthreads();  // the previous image's tile is done with every buffer
        start_rows_bf16<kD, kFwdRows, kWide, kBy>(q_tile, q_src + p.lq.slice_of(b, h), p.lq.t, i0,
                                                  p.T, p.D);
        start_rows(0);
        // The rows' norms come from the kernel before this one (launched early, see tiles.cuh).
        wait_for_previous_grid();
        let_next_grid_start();
        start_row_values<kFwdRows>(q_norm, p.q_norm + slice0, i0, p.T);
        start_norms(0);
        commit_copies();  // one group: the query rows and norms, and key chunk 0
        for (int c = 0; c < n_chunks; ++c) {
            copies_landed<0>();
            __syncthreads();  // chunk c is in; chunk c - 1 (the other buffer) is done with
            start_chunk(c + 1);
            const float* k_norm = k_norms + c % 2 * kTile;
            float dot[2][4] = {};  // 2 n-tiles of 8 keys: quarter * 16 + 8 * nt
#pragma unroll
            for (int ks = 0; ks < kD / 16; ++ks) {
                unsigned a[4], b[4];
                a_fragment(q_tile, kPq, m0, 16 * ks, a);
                bt_fragments(buffer(c), kPq, quarter * 16, 16 * ks, b);
                mma_bf16(dot[0], a, b[0], b[1]);
                mma_bf16(dot[1], a, b[2], b[3]);
            }
            // Keys outside a query's window get scores too: top-K never reads them.
#pragma unroll
            for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
                for (int x = 0; x < 2; ++x) {
                    const int qi = m0 + g + 8 * x;
                    const int n = quarter * 16 + 8 * nt + 2 * t;
                    float2 pair;
                    pair.x = -expanded_distance(q_norm[qi], k_norm[n], dot[nt][2 * x]) * coef;
                    pair.y = -expanded_distance(q_norm[qi], k_norm[n + 1], dot[nt][2 * x + 1]) *
                             coef;
                    *reinterpret_cast<float2*>(scores + qi * pitch + c * kTile + n) = pair;
                }
            }
        }
        __syncthreads();

        top_k_rows(scores, pitch, p, bh, i0);

        // out = P V: A = probabilities (rows m0.., keys of the chunk, high and low parts), B =
        // value rows; this warp's dims are quarter * kD / 4 + 8 * nt (with kD / 4 = 8, one
        // n-tile of the two that a B load brings).
        constexpr int kNt = kD / 32;
        float o[kNt][4] = {};
        for (int c = 0; c < n_chunks; ++c) {
            const int j = n_chunks + c;
            copies_landed<0>();
            __syncthreads();  // value chunk c is in; the other buffer is done with
            if (c + 1 < n_chunks) start_chunk(j + 1);
            const uint16_t* v_tile = buffer(j);
#pragma unroll
            for (int ks = 0; ks < kTile / 16; ++ks) {
                unsigned pa[4], pb[4];  // probabilities: high and low bf16 parts
                a_fragment(p_hi, 2 * pitch, m0, c * kTile + 16 * ks, pa);
                a_fragment(p_lo, 2 * pitch, m0, c * kTile + 16 * ks, pb);
#pragma unroll
                for (int nt = 0; nt < kNt; nt += 2) {
                    unsigned b[4];
                    b_fragments(v_tile, kPq, 16 * ks, quarter * (kD / 4) + 8 * nt, b);
                    mma_bf16(o[nt], pa, b[0], b[1]);
                    mma_bf16(o[nt], pb, b[0], b[1]);
                    if constexpr (kNt > 1) {
                        mma_bf16(o[nt + 1], pa, b[2], b[3]);
                        mma_bf16(o[nt + 1], pb, b[2], b[3]);
                    }
                }
            }
        }
        // Each thread writes dims quarter * kD / 4 + 8 nt + 2 t + c of its two rows (accumulator
        // e = 2 x + c), each row's address formed once.
#pragma unroll
        for (int x = 0; x < 2; ++x) {
            const int i = i0 + m0 + g + 8 * x;
            if (i >= p.T) continue;
            const int64_t row_at = p.lo.at_of(b, h, i);
#pragma unroll
            for (int nt = 0; nt < kNt; ++nt) {
#pragma unroll
                for (int c = 0; c < 2; ++c) {
                    const int d = quarter * (kD / 4) + 8 * nt + 2 * t + c;
                    if (d >= p.D) continue;
                    p.out[row_at + d] = static_cast<c10::BFloat16>(o[nt][2 * x + c]);
                    if (p.out_f32 != nullptr) p.out_f32[row_at + d] = o[nt][2 * x + c];
                }
            }
        }
    }
#else
    __trap();
#endif
}

// ---- Row norms for the tensor-core kernels ----
struct NormsParams {
    const uint16_t* q;  // bf16 bits, (B, H, T, D) with layout lq
    const uint16_t* k;
    Layout lq, lk;
    int H, T, D;
    float* q_norm;  // (B, H, T)
    float* k_norm;
};

// ||x||^2 in fp32 of every row of q (blockIdx.z = 0) and of k (1); blockIdx.x is the (b, h).
// kLanes lanes share a row, each summing the squares of its 8 dims by fma, and their sums fold
// by shuffles. A warp holds kLoads groups of rows in flight (one 16-byte load per lane and group
// where kWide, eight 2-byte loads otherwise), so that the kernel waits on memory once per
// kLoads groups instead of once per row. Dims past D count as zero.
template <int kD, bool kWide>
__global__ void __launch_bounds__(256) krause_row_norms_kernel(const NormsParams p) {
    constexpr int kLanes = kD / 8;
    constexpr int kPerLoad = 32 / kLanes;  // rows of a warp per group
    constexpr int kLoads = 4;
    constexpr int kRows = 256 / 32 * kPerLoad * kLoads;  // rows of a block per pass
    let_next_grid_start();  // the forward may start; it waits for these norms before it reads them
    const int bh = blockIdx.x, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int d0 = 8 * (lane % kLanes);  // this lane's first dim
    const bool keys = blockIdx.z == 1;
    const uint16_t* src = keys ? p.k + p.lk.slice(bh, p.H) : p.q + p.lq.slice(bh, p.H);
    const int64_t stride = keys ? p.lk.t : p.lq.t;
    float* norms = (keys ? p.k_norm : p.q_norm) + static_cast<int64_t>(bh) * p.T;
    for (int t0 = blockIdx.y * kRows; t0 < p.T; t0 += gridDim.y * kRows) {
        auto row_of = [&](int u) { return t0 + (warp * kLoads + u) * kPerLoad + lane / kLanes; };
        unsigned x[kLoads][4];  // dims d0 + 2i (low half) and d0 + 2i + 1 (high half)
#pragma unroll
        for (int u = 0; u < kLoads; ++u) {
            const uint16_t* r = src + static_cast<int64_t>(min(row_of(u), p.T - 1)) * stride + d0;
            if constexpr (kWide) {
                const uint4 w = d0 < p.D ? *reinterpret_cast<const uint4*>(r) : uint4{0, 0, 0, 0};
                x[u][0] = w.x;
                x[u][1] = w.y;
                x[u][2] = w.z;
                x[u][3] = w.w;
            } else {
#pragma unroll
                for (int i = 0; i < 4; ++i) {
                    const unsigned lo = d0 + 2 * i < p.D ? r[2 * i] : 0u;
                    const unsigned hi = d0 + 2 * i + 1 < p.D ? r[2 * i + 1] : 0u;
                    x[u][i] = lo | hi << 16;
                }
            }
        }
#pragma unroll
        for (int u = 0; u < kLoads; ++u) {
            float acc = 0.f;
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                const float a = __uint_as_float(x[u][i] << 16);
                const float b = __uint_as_float(x[u][i] & 0xffff0000u);
                acc = __fmaf_rn(a, a, acc);
                acc = __fmaf_rn(b, b, acc);
            }
#pragma unroll
            for (int o = kLanes / 2; o > 0; o >>= 1) acc += __shfl_xor_sync(kFull, acc, o);
            const int t = row_of(u);
            if (t < p.T && lane % kLanes == 0) norms[t] = acc;
        }
    }
}

}  // namespace

void launch_row_norms(const c10::BFloat16* q, const c10::BFloat16* k, Layout lq, Layout lk,
                      bool wide, int n_bh, int H, int T, int D, int kd, float* q_norm,
                      float* k_norm, cudaStream_t stream) {
    const NormsParams p{reinterpret_cast<const uint16_t*>(q), reinterpret_cast<const uint16_t*>(k),
                        lq, lk, H, T, D, q_norm, k_norm};
    dispatch_head_dim(kd, [&](auto head) {
        constexpr int kD = decltype(head)::value;
        constexpr int kRows = 256 / 32 * (32 / (kD / 8)) * 4;
        const dim3 grid(n_bh, std::min((T + kRows - 1) / kRows, 65535), 2);
        auto kernel = wide ? krause_row_norms_kernel<kD, true> : krause_row_norms_kernel<kD, false>;
        launch(kernel, grid, 256, 0, stream, p);
    });
}

int padded_head_dim(int64_t D) { return D <= 32 ? 32 : D <= 64 ? 64 : 128; }

size_t forward_shared_bytes(int kd, int n_cols, bool scores_in_shared, bool mma) {
    if (mma) return mma_forward_shared_bytes(kd, n_cols, scores_in_shared);
    const size_t tiles = (kFwdRows + kTile) * (kd + 4);
    return sizeof(float) * (tiles + (scores_in_shared ? size_t(n_cols) * kFwdPitch : 0));
}

template <typename scalar_t>
void launch_forward(const ForwardParams<scalar_t>& p, int kd, bool mma, bool in_shared, int grid,
                    size_t bytes, cudaStream_t stream) {
    dispatch_head_dim(kd, [&](auto head) {
        constexpr int kD = decltype(head)::value;
        auto kernel = in_shared ? krause_forward_kernel<scalar_t, kD, true>
                                : krause_forward_kernel<scalar_t, kD, false>;
        if constexpr (std::is_same_v<scalar_t, c10::BFloat16>) {
            if (mma) {
                TORCH_CHECK(in_shared && p.W <= kTensorCoreMaxWindow,
                            "krause forward: the tensor-core kernel takes windows of at most ",
                            kTensorCoreMaxWindow, " keys, got ", p.W);
                TORCH_CHECK(p.H <= 65535, "krause forward: the tensor-core kernel takes at most "
                            "65535 heads, got ", p.H);
                kernel = p.wide ? krause_forward_mma_kernel<kD, true>
                                : krause_forward_mma_kernel<kD, false>;
            }
        }
        // The tensor-core kernel: one block per (query tile, head, image), 65535 images at most
        // at a time; the CUDA-core one: `grid` blocks over the tiles.
        const dim3 blocks = mma ? dim3(p.n_qtiles, p.H, std::min(p.B, 65535)) : dim3(grid);
        // The tensor-core kernel waits for the row norms (launched just before it) where it needs
        // them, so it may start early.
        launch(kernel, blocks, mma ? kMmaFwdThreads : kFwdThreads, bytes, stream, p, mma);
    });
}

template void launch_forward(const ForwardParams<float>&, int, bool, bool, int, size_t,
                             cudaStream_t);
template void launch_forward(const ForwardParams<c10::BFloat16>&, int, bool, bool, int, size_t,
                             cudaStream_t);
template void launch_forward(const ForwardParams<c10::Half>&, int, bool, bool, int, size_t,
                             cudaStream_t);

}  // namespace krause::fused
