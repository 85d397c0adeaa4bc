// The backward kernels of fused Krause attention on tensor cores (bf16 after the tensor-core
// forward, head sizes up to 64).
#include "model/cuda/params.cuh"

#include <type_traits>

namespace krause::fused {
namespace {

// ---- The backward passes on tensor cores (bf16, after the tensor-core forward, head size <= 64)
// Four warps per block, each owning 16 of the block's 64 rows (queries in the query pass, keys in
// the key pass); the other side streams through shared memory in chunks of 64 rows, consumed 16 at
// a time, through two buffers: chunk c + 1 is copied (cp.async) while the block works on chunk c.
// The products over head dims (q.k for the distances, dO.v for dp) are mma with the
// block's rows as A operands, kept in registers for the whole tile (re-read from shared memory at
// each step from head size 64, where holding them spilled); the probabilities and ds are
// formed in the accumulator fragments, where the m16n8 accumulators of two adjacent 8-column
// tiles are exactly the A fragment of the next m16n8k16 product, so they feed the sums over the
// chunk (dq = ds.K, dv = P^T.dO, dk = ds^T.Q) without leaving registers, rounded to one bf16:
// each gradient then carries a second rounding beside its own output's, about 1.3-1.6 times the
// ATen path's error (which rounds only the gradient), where a bf16 high and low part matched it
// with twice the products. (The forward keeps both parts: its output feeds delta, and one bf16
// there would take dq past twice ATen's error.) The distances reuse the forward's norms, products
// and rounding, so the kept set and the probabilities are the forward's.

// The A fragments of rows m0 .. m0 + 15 of a bf16 tile, one per 16 dims.
template <int kD>
__device__ __forceinline__ void row_fragments(const uint16_t* __restrict__ tile, int m0,
                                              unsigned (&a)[kD / 16][4]) {
#pragma unroll
    for (int ks = 0; ks < kD / 16; ++ks) a_fragment(tile, kD + kMmaPad, m0, 16 * ks, a[ks]);
}

// c[h] = sum over dims of rows(a) times tile rows n0 + 8h + g (B = tile^T), h = 0, 1: the
// accumulators of 16 chunk rows, in ascending steps of 16 dims like the forward's distances.
template <int kD>
__device__ __forceinline__ void pair_products(const unsigned (&a)[kD / 16][4],
                                              const uint16_t* __restrict__ tile, int n0,
                                              float (&c)[2][4]) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
#pragma unroll
        for (int e = 0; e < 4; ++e) c[h][e] = 0.f;
    }
#pragma unroll
    for (int ks = 0; ks < kD / 16; ++ks) {
        unsigned b[4];
        bt_fragments(tile, kD + kMmaPad, n0, 16 * ks, b);
        mma_bf16(c[0], a[ks], b[0], b[1]);
        mma_bf16(c[1], a[ks], b[2], b[3]);
    }
}

// acc[n] += x . tile rows k0 .. k0 + 15 (B = the tile, its rows summed, dims 8n + column), x the
// A fragment of a 16 x 16 block given as accumulators (two m16n8 tiles), rounded to bf16.
template <int kD>
__device__ __forceinline__ void add_weighted_rows(const float (&x)[2][4],
                                                  const uint16_t* __restrict__ tile, int k0,
                                                  float (&acc)[kD / 8][4]) {
    const unsigned a[4] = {pack_bf16(x[0][0], x[0][1]), pack_bf16(x[0][2], x[0][3]),
                           pack_bf16(x[1][0], x[1][1]), pack_bf16(x[1][2], x[1][3])};
#pragma unroll
    for (int n = 0; n < kD / 8; n += 2) {
        unsigned b[4];
        b_fragments(tile, kD + kMmaPad, k0, 8 * n, b);
        mma_bf16(acc[n], a, b[0], b[1]);
        mma_bf16(acc[n + 1], a, b[2], b[3]);
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
    // Each thread keeps dim d and takes every kRowStep-th row from its first one (one 64-bit
    // product per call instead of one per element).
    constexpr int kRowStep = kFwdThreads / kD;
    static_assert(kFwdThreads % kD == 0 && kRows % kRowStep == 0, "whole rows per pass");
    const int first = threadIdx.x / kD, d = threadIdx.x % kD;
    const float* from = src + static_cast<int64_t>(row0 + first) * stride + d;
    const int64_t step = static_cast<int64_t>(kRowStep) * stride;
    for (int n = 0; n < kRows / kRowStep; ++n) {
        const int row = first + n * kRowStep, r = row0 + row;
        const float x = (d < D && r >= 0 && r < T) ? from[n * step] : 0.f;
        const __nv_bfloat16 h = __float2bfloat16_rn(x);
        const __nv_bfloat16 l = __float2bfloat16_rn(x - __bfloat162float(h));
        hi[row * (kD + kMmaPad) + d] = *reinterpret_cast<const uint16_t*>(&h);
        lo[row * (kD + kMmaPad) + d] = *reinterpret_cast<const uint16_t*>(&l);
    }
}

// Blocks per multiprocessor the passes are compiled for: with 16-byte loads as many as the
// registers allow with at most a few bytes spilled (three at head size 64, four at 32: more warps
// to hide the latency of each step's dependent products); the element-load variants, which spill
// sooner, keep fewer.
constexpr int backward_blocks(int kD, bool kWide) {
    return kWide ? (kD <= 32 ? 4 : 3) : (kD <= 32 ? 3 : 2);
}

// Six tiles of kTile rows: the block's own two, and two buffers for each of the streamed two.
size_t mma_backward_shared_bytes(int kd) { return sizeof(uint16_t) * 6 * kTile * (kd + kMmaPad); }

// Query pass on tensor cores: what krause_backward_query_kernel computes (dq, delta, the
// per-tile d log_sigma), from the fragments described above; delta goes to the key pass in each
// query's record (BackwardParams::query_stats) instead of p.delta.
template <int kD, bool kWide>
__global__ void __launch_bounds__(kFwdThreads, backward_blocks(kD, kWide))
    krause_backward_query_mma_kernel(const BackwardParams<c10::BFloat16> p) {
#if __CUDA_ARCH__ >= 800
    static_assert(kFwdThreads == 128 && kTile == 64, "four warps of 16 rows");
    constexpr int kPq = kD + kMmaPad;
    constexpr bool kHoldRows = kD <= 32;  // see the comment above the fragments' helpers
    extern __shared__ float4 shared4[];
    uint16_t* q_tile = reinterpret_cast<uint16_t*>(shared4);  // (kTile, kPq) the block's queries
    uint16_t* do_tile = q_tile + kTile * kPq;                  // (kTile, kPq) their dO
    uint16_t* k_tiles = do_tile + kTile * kPq;                 // 2 x (kTile, kPq) key chunks
    uint16_t* v_tiles = k_tiles + 2 * kTile * kPq;             // 2 x (kTile, kPq) value chunks
    __shared__ float q_norm[kTile], k_norms[2][kTile], delta_tile[kTile];
    __shared__ double warp_part[kFwdWarps];
    const auto* q_src = reinterpret_cast<const uint16_t*>(p.q);
    const auto* k_src = reinterpret_cast<const uint16_t*>(p.k);
    const auto* v_src = reinterpret_cast<const uint16_t*>(p.v);
    const auto* g_src = reinterpret_cast<const uint16_t*>(p.dout);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int g = lane / 4, t = lane % 4;
    const int m0 = 16 * warp;
    const int n_chunks = p.n_cols / kTile;
    // Launched early: dO may come from the kernel just before, the rest from the forward.
    wait_for_previous_grid();
    let_next_grid_start();

    for (int tile = blockIdx.x; tile < p.n_tiles; tile += gridDim.x) {
        const RowTile rows = backward_tile(p, tile);
        const int bh = rows.bh, i0 = rows.row0, key0 = i0 - p.W + 1;
        const float coef = rows.coef;
        const int64_t slice0 = static_cast<int64_t>(bh) * p.T;  // (b, h) in the per-row arrays
        // Key and value chunk c (and the keys' norms) into buffer c % 2, copied while the block
        // works on chunk c - 1.
        auto start_chunk = [&](int c) {
            start_rows_bf16<kD, kTile, kWide>(k_tiles + c % 2 * kTile * kPq,
                                              k_src + p.lk.slice(bh, p.H), p.lk.t,
                                              key0 + c * kTile, p.T, p.D);
            start_rows_bf16<kD, kTile, kWide>(v_tiles + c % 2 * kTile * kPq,
                                              v_src + p.lv.slice(bh, p.H), p.lv.t,
                                              key0 + c * kTile, p.T, p.D);
            start_row_values<kTile>(k_norms[c % 2], p.k_norm + slice0, key0 + c * kTile, p.T);
            commit_copies();
        };

        __syncthreads();
        start_rows_bf16<kD, kTile, kWide>(q_tile, q_src + p.lq.slice(bh, p.H), p.lq.t, i0, p.T,
                                          p.D);
        start_rows_bf16<kD, kTile, kWide>(do_tile, g_src + p.lg.slice(bh, p.H), p.lg.t, i0, p.T,
                                          p.D);
        start_row_values<kTile>(q_norm, p.q_norm + slice0, i0, p.T);
        commit_copies();
        start_chunk(0);
        // The forward output O in the second buffers, as bf16 hi + lo, for delta.
        uint16_t* o_hi = k_tiles + kTile * kPq;
        uint16_t* o_lo = v_tiles + kTile * kPq;
        load_rows_split<kD, kTile>(o_hi, o_lo, p.out + p.lo.slice(bh, p.H), p.lo.t, i0, p.T, p.D);
        copies_landed<1>();  // q, dO and their norms; chunk 0 may still be in flight
        __syncthreads();
        unsigned qa[kD / 16][4], da[kD / 16][4];  // da also forms delta below
        if constexpr (kHoldRows) {
            row_fragments<kD>(q_tile, m0, qa);
        }
        row_fragments<kD>(do_tile, m0, da);
        {
            // delta_i = dO_i . O_i, the diagonal of dO O^T, formed by the products that form
            // dp_ij = dO_i . v_j: with one kept key (p = 1, so O_i = v_j exactly and lo = 0)
            // ds = p (dp - delta) is then exactly 0, as in the ATen path.
            float hi[2][4], lo[2][4];
            pair_products<kD>(da, o_hi, m0, hi);
            pair_products<kD>(da, o_lo, m0, lo);
            if (t == g / 2) {  // the lane that holds (g, g) and (g + 8, g + 8)
#pragma unroll
                for (int x = 0; x < 2; ++x) {
                    const int row = m0 + g + 8 * x;
                    const float d = hi[x][2 * x + g % 2] + lo[x][2 * x + g % 2];
                    delta_tile[row] = d;
                }
            }
        }
        __syncthreads();
        // This thread's two query rows: m0 + g and m0 + g + 8.
        float lse_hi[2], lo2[2];  // the row's lse pair as (hi, lo log2 e)
        unsigned not_tau[2];      // ~tau of the row's threshold (kept_bits)
        int r_last[2];
        float delta[2], qn[2];
        bool live[2];
#pragma unroll
        for (int x = 0; x < 2; ++x) {
            const int row = m0 + g + 8 * x, i = i0 + row;
            live[x] = i < p.T;
            const int64_t at = static_cast<int64_t>(bh) * p.T + min(i, p.T - 1);
            const float2 pair = p.lse[at];
            lse_hi[x] = pair.x;
            lo2[x] = lse_lo_log2(pair.y);
            const uint2 threshold = p.threshold[at];
            not_tau[x] = ~threshold.x;
            r_last[x] = static_cast<int>(threshold.y);
            delta[x] = delta_tile[row];
            qn[x] = q_norm[row];
            // The key pass reads a query's four values as one 16-byte record.
            if (t == 0 && live[x]) {
                p.query_stats[at] = make_float4(lse_hi[x], lo2[x], delta[x], qn[x]);
            }
        }

        float acc[kD / 8][4] = {};
        float rowsum[2] = {}, ds_log2p[2] = {}, p_log2p[2] = {};
        for (int c = 0; c < n_chunks; ++c) {
            copies_landed<0>();
            __syncthreads();  // chunk c is in; the other buffers (chunk c - 1, O) are done with
            if (c + 1 < n_chunks) start_chunk(c + 1);
            const uint16_t* k_tile = k_tiles + c % 2 * kTile * kPq;
            const uint16_t* v_tile = v_tiles + c % 2 * kTile * kPq;
            const float* k_norm = k_norms[c % 2];
#pragma unroll 1
            for (int s = 0; s < kTile / 16; ++s) {
                if (!query_step_live(i0, m0, c * kTile + 16 * s, p.W, p.T)) continue;
                float dot[2][4], dp[2][4], ds[2][4];
                if constexpr (!kHoldRows) {
                    row_fragments<kD>(q_tile, m0, qa);
                    row_fragments<kD>(do_tile, m0, da);
                }
                pair_products<kD>(qa, k_tile, 16 * s, dot);
                pair_products<kD>(da, v_tile, 16 * s, dp);
                auto pairs = [&](auto all_in) {  // all_in: every pair a live query's window key
#pragma unroll
                    for (int h = 0; h < 2; ++h) {
#pragma unroll
                        for (int e = 0; e < 4; ++e) {
                            const int x = e / 2;
                            const int col = 16 * s + 8 * h + 2 * t + e % 2;  // key of the chunk
                            const int r = c * kTile + col - (m0 + g + 8 * x);  // its window slot
                            const bool key = key0 + c * kTile + col >= 0;  // not before the start
                            const float dist = expanded_distance(qn[x], k_norm[col], dot[h][e]);
                            const float sc = -dist * coef;
                            const bool in =
                                decltype(all_in)::value || (live[x] && key && r >= 0 && r < p.W);
                            float gr = 0.f;
                            if (in && kept_bits(sc, r, not_tau[x], r_last[x])) {
                                gr = kept_pair_ds(sc, dp[h][e], delta[x], lse_hi[x], lo2[x],
                                                  ds_log2p[x], p_log2p[x]);
                            }
                            ds[h][e] = gr;
                            rowsum[x] += gr;
                        }
                    }
                };
                // Most steps hold only pairs inside the windows of live queries: those skip the
                // tests. The warp's queries are i0 + m0 .. + 15, the step's keys kj .. kj + 15.
                const int iw = i0 + m0, kj = key0 + c * kTile + 16 * s;
                if (kj >= 0 && iw + 15 < p.T && kj + 15 <= iw && iw + 15 <= kj + p.W - 1) {
                    pairs(std::true_type{});
                } else {
                    pairs(std::false_type{});
                }
                add_weighted_rows<kD>(ds, k_tile, 16 * s, acc);
            }
        }
        double dls = 0.0;
#pragma unroll
        for (int x = 0; x < 2; ++x) {
            rowsum[x] = quad_sum(rowsum[x]);
            const float xs = quad_sum(ds_log2p[x]), m = quad_sum(p_log2p[x]);
            if (t == 0) dls += static_cast<double>(xs) - static_cast<double>(m) * rowsum[x];
        }
        // Each thread writes dims 8 n + 2 t + c of its two rows (accumulator e = 2 x + c).
#pragma unroll
        for (int x = 0; x < 2; ++x) {
            if (!live[x]) continue;
            const int row = m0 + g + 8 * x;
            c10::BFloat16* dq_row = p.dq + p.ld.at(bh, p.H, i0 + row);
#pragma unroll
            for (int n = 0; n < kD / 8; ++n) {
#pragma unroll
                for (int c = 0; c < 2; ++c) {
                    const int d = 8 * n + 2 * t + c;
                    if (d >= p.D) continue;
                    const float qd =
                        __uint_as_float(static_cast<unsigned>(q_tile[row * kPq + d]) << 16);
                    dq_row[d] = static_cast<c10::BFloat16>(-2.f * coef *
                                                           (qd * rowsum[x] - acc[n][2 * x + c]));
                }
            }
        }
        dls = -2.0 * kLn2 * warp_sum(dls);  // the sums were of log2 p
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
template <int kD, bool kWide>
__global__ void __launch_bounds__(kFwdThreads, backward_blocks(kD, kWide))
    krause_backward_key_mma_kernel(const BackwardParams<c10::BFloat16> p) {
#if __CUDA_ARCH__ >= 800
    static_assert(kFwdThreads == 128 && kTile == 64, "four warps of 16 rows");
    constexpr int kPq = kD + kMmaPad;
    constexpr bool kHoldRows = kD <= 32;  // see the comment above the fragments' helpers
    extern __shared__ float4 shared4[];
    uint16_t* k_tile = reinterpret_cast<uint16_t*>(shared4);  // (kTile, kPq) the block's keys
    uint16_t* v_tile = k_tile + kTile * kPq;                   // (kTile, kPq) their values
    uint16_t* q_tiles = v_tile + kTile * kPq;                  // 2 x (kTile, kPq) query chunks
    uint16_t* do_tiles = q_tiles + 2 * kTile * kPq;            // 2 x (kTile, kPq) their dO
    __shared__ float k_norm[kTile];
    __shared__ float4 stats_tiles[2][kTile];  // the query pass's records (BackwardParams)
    __shared__ uint2 threshold_tiles[2][kTile];
    const auto* q_src = reinterpret_cast<const uint16_t*>(p.q);
    const auto* k_src = reinterpret_cast<const uint16_t*>(p.k);
    const auto* v_src = reinterpret_cast<const uint16_t*>(p.v);
    const auto* g_src = reinterpret_cast<const uint16_t*>(p.dout);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int g = lane / 4, t = lane % 4;
    const int m0 = 16 * warp;

    for (int tile = blockIdx.x; tile < p.n_tiles; tile += gridDim.x) {
        const RowTile rows = backward_tile(p, tile);
        const int bh = rows.bh, j0 = rows.row0;
        const float coef = rows.coef;
        const int64_t slice0 = static_cast<int64_t>(bh) * p.T;  // (b, h) in the per-row arrays
        // Query chunks start at j0; those past T hold no query.
        const int n_chunks = min(p.n_cols / kTile, (p.T - j0 + kTile - 1) / kTile);
        // Query chunk c (rows, dO, their norms and the forward's row statistics) into buffer
        // c % 2, copied while the block works on chunk c - 1.
        auto start_chunk = [&](int c) {
            const int b = c % 2, ibase = j0 + c * kTile;
            start_rows_bf16<kD, kTile, kWide>(q_tiles + b * kTile * kPq,
                                              q_src + p.lq.slice(bh, p.H), p.lq.t, ibase, p.T,
                                              p.D);
            start_rows_bf16<kD, kTile, kWide>(do_tiles + b * kTile * kPq,
                                              g_src + p.lg.slice(bh, p.H), p.lg.t, ibase, p.T,
                                              p.D);
            start_row_values<kTile>(threshold_tiles[b], p.threshold + slice0, ibase, p.T);
            // Launched early: the records come from the query pass, which may still run; all
            // else was written before it started.
            wait_for_previous_grid();
            start_row_values<kTile>(stats_tiles[b], p.query_stats + slice0, ibase, p.T);
            commit_copies();
        };

        __syncthreads();
        start_rows_bf16<kD, kTile, kWide>(k_tile, k_src + p.lk.slice(bh, p.H), p.lk.t, j0, p.T,
                                          p.D);
        start_rows_bf16<kD, kTile, kWide>(v_tile, v_src + p.lv.slice(bh, p.H), p.lv.t, j0, p.T,
                                          p.D);
        start_row_values<kTile>(k_norm, p.k_norm + slice0, j0, p.T);
        commit_copies();
        start_chunk(0);
        let_next_grid_start();  // after the wait in start_chunk
        copies_landed<1>();  // the block's keys, values and norms; chunk 0 may still be in flight
        __syncthreads();
        unsigned ka[kD / 16][4], va[kD / 16][4];
        if constexpr (kHoldRows) {
            row_fragments<kD>(k_tile, m0, ka);
            row_fragments<kD>(v_tile, m0, va);
        }
        const float kn[2] = {k_norm[m0 + g], k_norm[m0 + g + 8]};

        float dv[kD / 8][4] = {}, dk[kD / 8][4] = {};
        float colsum[2] = {};
        for (int c = 0; c < n_chunks; ++c) {
            const int ibase = j0 + c * kTile;
            copies_landed<0>();
            __syncthreads();  // chunk c is in; the other buffers (chunk c - 1) are done with
            if (c + 1 < n_chunks) start_chunk(c + 1);
            const uint16_t* q_tile = q_tiles + c % 2 * kTile * kPq;
            const uint16_t* do_tile = do_tiles + c % 2 * kTile * kPq;
            const float4* stats_tile = stats_tiles[c % 2];
            const uint2* threshold_tile = threshold_tiles[c % 2];
#pragma unroll 1
            for (int s = 0; s < kTile / 16; ++s) {
                if (!key_step_live(j0, m0, c * kTile + 16 * s, p.W, p.T)) continue;
                float dot[2][4], dp[2][4], pv[2][4], ds[2][4];
                if constexpr (!kHoldRows) {
                    row_fragments<kD>(k_tile, m0, ka);
                    row_fragments<kD>(v_tile, m0, va);
                }
                pair_products<kD>(ka, q_tile, 16 * s, dot);
                pair_products<kD>(va, do_tile, 16 * s, dp);
                auto pairs = [&](auto all_in) {  // all_in: every pair a live query's window key
#pragma unroll
                    for (int h = 0; h < 2; ++h) {
#pragma unroll
                        for (int e = 0; e < 4; ++e) {
                            const int x = e / 2;
                            const int col = 16 * s + 8 * h + 2 * t + e % 2;  // query of the chunk
                            const int i = ibase + col;
                            const int r = j0 + m0 + g + 8 * x - i + p.W - 1;  // the key's slot
                            const float4 query = stats_tile[col];  // lse hi, lo log2 e, delta, norm
                            const float dist = expanded_distance(query.w, kn[x], dot[h][e]);
                            const float sc = -dist * coef;
                            const bool in =
                                decltype(all_in)::value || (i < p.T && r >= 0 && r < p.W);
                            float pr = 0.f, gr = 0.f;
                            const uint2 th = threshold_tile[col];
                            if (in && kept_bits(sc, r, ~th.x, static_cast<int>(th.y))) {
                                pr = probability2(sc, query.x, query.y);
                                gr = pr * (dp[h][e] - query.z);
                            }
                            pv[h][e] = pr;
                            ds[h][e] = gr;
                            colsum[x] += gr;
                        }
                    }
                };
                // Steps that hold only pairs inside the windows of live queries skip the tests:
                // the warp's keys are jw .. jw + 15, the step's queries iq .. iq + 15.
                const int jw = j0 + m0, iq = ibase + 16 * s;
                if (iq >= jw + 15 && iq + 15 <= jw + p.W - 1 && iq + 15 < p.T) {
                    pairs(std::true_type{});
                } else {
                    pairs(std::false_type{});
                }
                add_weighted_rows<kD>(pv, do_tile, 16 * s, dv);
                add_weighted_rows<kD>(ds, q_tile, 16 * s, dk);
            }
        }
#pragma unroll
        for (int x = 0; x < 2; ++x) colsum[x] = quad_sum(colsum[x]);
        // Each thread writes dims 8 n + 2 t + c of its two rows (accumulator e = 2 x + c).
#pragma unroll
        for (int x = 0; x < 2; ++x) {
            const int row = m0 + g + 8 * x;
            if (j0 + row >= p.T) continue;
            const int64_t row_at = p.ld.at(bh, p.H, j0 + row);
            c10::BFloat16* dk_row = p.dk + row_at;
            c10::BFloat16* dv_row = p.dv + row_at;
#pragma unroll
            for (int n = 0; n < kD / 8; ++n) {
#pragma unroll
                for (int c = 0; c < 2; ++c) {
                    const int d = 8 * n + 2 * t + c, e = 2 * x + c;
                    if (d >= p.D) continue;
                    const float kd =
                        __uint_as_float(static_cast<unsigned>(k_tile[row * kPq + d]) << 16);
                    dk_row[d] =
                        static_cast<c10::BFloat16>(2.f * coef * (dk[n][e] - kd * colsum[x]));
                    dv_row[d] = static_cast<c10::BFloat16>(dv[n][e]);
                }
            }
        }
    }
#else
    __trap();
#endif
}

}  // namespace

void launch_backward_mma(const BackwardParams<c10::BFloat16>& p, int kd, cudaStream_t stream) {
    TORCH_INTERNAL_ASSERT(kd == 32 || kd == 64, "tensor-core backward for head size ", kd);
    const size_t bytes = mma_backward_shared_bytes(kd);
    auto passes = [&](auto head, auto wide) {
        constexpr int kD = decltype(head)::value;
        constexpr bool kWide = decltype(wide)::value;
        launch(krause_backward_query_mma_kernel<kD, kWide>, p.n_tiles, kFwdThreads, bytes, stream,
               p, true);
        launch(krause_backward_key_mma_kernel<kD, kWide>, p.n_tiles, kFwdThreads, bytes, stream,
               p, true);
    };
    using Wide = std::true_type;
    using Narrow = std::false_type;
    if (kd == 32) {
        p.wide ? passes(std::integral_constant<int, 32>{}, Wide{})
               : passes(std::integral_constant<int, 32>{}, Narrow{});
    } else {
        p.wide ? passes(std::integral_constant<int, 64>{}, Wide{})
               : passes(std::integral_constant<int, 64>{}, Narrow{});
    }
}

}  // namespace krause::fused
