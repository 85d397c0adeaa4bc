// The backward kernels of fused Krause attention on CUDA cores (every dtype): a query-centric
// pass (dq, delta, d log_sigma per tile) and a key-centric pass (dk, dv), each recomputing the
// forward's scores of the kept keys, and the per-head sum of d log_sigma that follows either
// kind of passes. The tensor-core passes are in backward_mma.cu.
#include "model/cuda/params.cuh"

namespace krause::fused {
namespace {

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
        float2 lse[4];
        uint2 threshold[4];
        float delta[4], lo2[4];
#pragma unroll
        for (int a = 0; a < 4; ++a) {
            const int64_t at = static_cast<int64_t>(bh) * p.T + min(i0 + tr * 4 + a, p.T - 1);
            lse[a] = p.lse[at];
            lo2[a] = lse_lo_log2(lse[a].y);
            threshold[a] = p.threshold[at];
            delta[a] = delta_tile[tr * 4 + a];
        }

        float acc[4][S::kE] = {};
        float rowsum[4] = {};
        float ds_log2p[4] = {}, p_log2p[4] = {};  // this thread's sum_j ds log2 p, p log2 p
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
                    const bool key = key0 + c * kTile + tc + 16 * b >= 0;  // not before the start
                    const float s = -dist[a][b] * coef;
                    float g = 0.f;
                    if (live && key && r >= 0 && r < p.W && kept(s, r, threshold[a])) {
                        g = kept_pair_ds(s, dp[a][b], delta[a], lse[a].x, lo2[a], ds_log2p[a],
                                         p_log2p[a]);
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
            scalar_t* dq_row = p.dq + p.ld.at(bh, p.H, i);  // formed once per row
#pragma unroll
            for (int n = 0; n < S::kE; ++n) {
                const int d = S::of(tc, n);
                if (d >= p.D) continue;
                const float qd = q_tile[(tr * 4 + a) * kP + d];
                dq_row[d] = static_cast<scalar_t>(-2.f * coef * (qd * rowsum[a] - acc[a][n]));
            }
        }
        // d log_sigma = -2 sum_ij ds_ij s_ij = -2 sum_i sum_j ds_ij (log p_ij - m_i) for any m_i,
        // as sum_j ds_ij = 0. An error e in delta_i shifts every ds_ij by -e p_ij; with
        // m_i = sum_j p_ij log p_ij that shift drops out, instead of meeting a factor |s| ~ 20.
        double dls = 0.0;
#pragma unroll
        for (int a = 0; a < 4; ++a) {
            float x = ds_log2p[a], m = p_log2p[a];
            for (int o = 8; o > 0; o >>= 1) {  // over the 16 threads that share query a
                x += __shfl_xor_sync(kFull, x, o);
                m += __shfl_xor_sync(kFull, m, o);
            }
            if (tc == 0) dls += static_cast<double>(x) - static_cast<double>(m) * rowsum[a];
        }
        dls = -2.0 * kLn2 * warp_sum(dls);  // the sums were of log2 p
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
                const float2 lse = p.lse[row];
                const float lo2 = lse_lo_log2(lse.y);
                const uint2 threshold = p.threshold[row];
                const float delta = p.delta[row];
#pragma unroll
                for (int a = 0; a < 4; ++a) {
                    const int r = j0 + tr * 4 + a - i + p.W - 1;  // window slot of key j for i
                    const float s = -dist[a][b] * coef;
                    float pr = 0.f, g = 0.f;
                    if (live && r >= 0 && r < p.W && kept(s, r, threshold)) {
                        pr = probability2(s, lse.x, lo2);
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
            const int64_t row_at = p.ld.at(bh, p.H, j);  // formed once per row
#pragma unroll
            for (int n = 0; n < S::kE; ++n) {
                const int d = S::of(tc, n);
                if (d >= p.D) continue;
                const int64_t idx = row_at + d;
                const float kd = k_tile[(tr * 4 + a) * kP + d];
                p.dk[idx] = static_cast<scalar_t>(2.f * coef * (dk[a][n] - kd * colsum[a]));
                p.dv[idx] = static_cast<scalar_t>(dv[a][n]);
            }
        }
    }
}


// d log_sigma of each head: the query pass's per-tile partial sums (B, H, n_qtiles) summed in
// fp64 in a fixed order (each thread a fixed stride of them, then each warp's fixed tree and the
// warps in turn), so the gradient is the same bits on every run. One block a head. Launched early
// after the key pass, which lets it start only once the query pass has finished: it reads the
// partials at once, and waits for the key pass before it writes, so that a kernel after it finds
// both passes done.
template <typename scalar_t>
__global__ void __launch_bounds__(kThreads)
    krause_sum_log_sigma_kernel(const BackwardParams<scalar_t> p) {
    __shared__ double warp_part[kWarps];
    const int h = blockIdx.x, n = p.B * p.n_qtiles;
    double sum = 0.0;
#pragma unroll 4
    for (int m = threadIdx.x; m < n; m += kThreads) {
        const int b = m / p.n_qtiles, t = m - b * p.n_qtiles;
        sum += p.dlog_sigma[(static_cast<int64_t>(b) * p.H + h) * p.n_qtiles + t];
    }
    sum = warp_sum(sum);
    if (threadIdx.x % 32 == 0) warp_part[threadIdx.x / 32] = sum;
    __syncthreads();
    wait_for_previous_grid();
    if (threadIdx.x == 0) {
        double total = 0.0;
        for (int w = 0; w < kWarps; ++w) total += warp_part[w];
        p.dlog_sigma_sum[h] = static_cast<float>(total);
    }
}

size_t query_pass_shared_bytes(int kd) {
    return sizeof(float) * (4 * kTile * (kd + 4) + kTile * kPitchS);
}

size_t key_pass_shared_bytes(int kd) {
    return sizeof(float) * (4 * kTile * (kd + 4) + 2 * kTile * kPitchS);
}

}  // namespace

template <typename scalar_t>
void launch_backward(const BackwardParams<scalar_t>& p, int kd, bool mma, cudaStream_t stream) {
    bool on_tensor_cores = false;
    if constexpr (std::is_same_v<scalar_t, c10::BFloat16>) {
        on_tensor_cores = mma && kd <= 64;
        if (on_tensor_cores) launch_backward_mma(p, kd, stream);
    }
    if (!on_tensor_cores) {
        dispatch_head_dim(kd, [&](auto head) {
            constexpr int kD = decltype(head)::value;
            launch(krause_backward_query_kernel<scalar_t, kD>, p.n_tiles, kThreads,
                   query_pass_shared_bytes(kD), stream, p);
            launch(krause_backward_key_kernel<scalar_t, kD>, p.n_tiles, kThreads,
                   key_pass_shared_bytes(kD), stream, p);
        });
    }
    launch(krause_sum_log_sigma_kernel<scalar_t>, p.H, kThreads, 0, stream, p, true);
}

template void launch_backward(const BackwardParams<float>&, int, bool, cudaStream_t);
template void launch_backward(const BackwardParams<c10::BFloat16>&, int, bool, cudaStream_t);
template void launch_backward(const BackwardParams<c10::Half>&, int, bool, cudaStream_t);

}  // namespace krause::fused
