// Exact top-K of one query's window and its softmax, run by one warp (included by the kernels'
// .cu files only).
#pragma once

#include "model/cuda/tiles.cuh"

namespace krause::fused {

// What the forward keeps of a query's window for the backward, 16 bytes per query instead of a
// bit per window slot:
// - the kept keys as a threshold on the order keys of the scores: every key above tau, and of
//   the keys equal to tau those in window slots up to r_last (ties keep the oldest keys first).
//   The backward recomputes each score bit for bit and applies the same test;
// - the log-sum-exp of the kept scores as an fp32 pair hi + lo: the row maximum (exact) plus the
//   log of the kept scores' sum, added without rounding. One fp32 lse of |lse| ~ 20 would add
//   its own rounding, a common factor 1 +- 1e-6 on every p of a row, and d log_sigma, a sum of
//   ds * s in which sum_j ds_ij cancels to ~0, would amplify that by |s|.
struct RowStats {
    float lse_hi, lse_lo;
    unsigned tau;
    int r_last;
};

__device__ __forceinline__ bool is_kept(unsigned key, int r, unsigned tau, int r_last) {
    return key > tau || (key == tau && r <= r_last);
}

// exp(s - lse) from the pair: s - hi is exact when both lie within a factor of two (the scores
// near the maximum, which carry the mass), and lo is the small rest (log p within about one fp32
// unit of what an fp64 lse gives, and no error common to a whole row). Formed by this one function
// in the forward and the backward, so both get the same bits.
__device__ __forceinline__ float log_probability(float s, float lse_hi, float lse_lo) {
    return __fsub_rn(__fsub_rn(s, lse_hi), lse_lo);
}

__device__ __forceinline__ float probability(float s, float lse_hi, float lse_lo) {
    return fast_exp(log_probability(s, lse_hi, lse_lo));
}

// The backward's form: log2 p = (s - hi) log2 e - lo log2 e in one fma, s - hi exact as above and
// lo2 = lo log2 e formed once per query, so one rounding where log_probability and the ex2's
// scaling take two. The backward passes take p = 2^log2 p, within rounding of the forward's p.
__device__ __forceinline__ float lse_lo_log2(float lse_lo) { return lse_lo * kLog2e; }

__device__ __forceinline__ float log2_probability(float s, float lse_hi, float lo2) {
    return __fmaf_rn(__fsub_rn(s, lse_hi), kLog2e, -lo2);
}

__device__ __forceinline__ float probability2(float s, float lse_hi, float lo2) {
    return fast_exp2(log2_probability(s, lse_hi, lo2));
}

// The query passes' term of a kept pair: returns ds = p (dp - delta) and adds ds log2 p and
// p log2 p to the row's sums for d log_sigma (which take a factor ln 2 at the end).
__device__ __forceinline__ float kept_pair_ds(float s, float dp, float delta, float lse_hi,
                                              float lo2, float& ds_log2p, float& p_log2p) {
    const float log2_p = log2_probability(s, lse_hi, lo2);
    const float pr = fast_exp2(log2_p);
    const float ds = pr * (dp - delta);
    ds_log2p = __fmaf_rn(ds, log2_p, ds_log2p);
    p_log2p = __fmaf_rn(pr, log2_p, p_log2p);
    return ds;
}

// Top-K and softmax of one query's window, run by a whole warp. Window slot r (key i - W + 1 + r)
// = lane + 32 m of a lane holds its score at slot0[m * m_stride]; slots r < lo have no key. Keeps
// the K largest scores (all of them when the window holds <= K keys; among equal scores the
// lowest r first), hands each slot's probability (0 where dropped) to put(m, p) and returns the
// row's RowStats (the same in every lane). kSlots > 0 caches the window in kSlots registers per
// lane (W <= 32 * kSlots), and reads the scores before any put; kSlots = 0 re-reads them from
// memory for any W, where dropped ones become -inf. kWhole says that every slot holds a key
// (lo = 0 and W = 32 * kSlots, most queries of a long sequence): no slot is tested.
template <int kSlots, bool kWhole, typename Put>
__device__ RowStats top_k_softmax(float* slot0, int m_stride, int lo, int W, int top_k, Put put) {
    static_assert(!kWhole || kSlots > 0, "a whole window is cached");
    const int lane = threadIdx.x % 32;
    const int n_slots = kSlots > 0 ? kSlots : (W + 31) / 32;
    float cache[kSlots > 0 ? kSlots : 1] = {};
    auto in_window = [&](int m) {
        const int r = lane + 32 * m;
        return kWhole || (r >= lo && r < W);
    };
    auto score = [&](int m) -> float {
        if constexpr (kSlots > 0) {
            return cache[m];
        } else {
            return in_window(m) ? slot0[m * m_stride] : -INFINITY;
        }
    };
    // The search below reads every key once per step: cached windows keep them in registers.
    unsigned keys[kSlots > 0 ? kSlots : 1] = {};
    if constexpr (kSlots > 0) {
#pragma unroll
        for (int m = 0; m < kSlots; ++m) {
            cache[m] = in_window(m) ? slot0[m * m_stride] : -INFINITY;
            keys[m] = in_window(m) ? score_key(cache[m]) : 0u;
        }
    }
    auto key = [&](int m) -> unsigned {
        if constexpr (kSlots > 0) {
            return keys[m];
        } else {
            return in_window(m) ? score_key(score(m)) : 0u;
        }
    };
    auto count_at_least = [&](unsigned cand) {
        int n = 0;
        if constexpr (kSlots > 0) {
            // key + (2^32 - cand) carries out exactly when key >= cand (cand > 0 in the search,
            // and empty slots hold key 0, which never carries): an add that sets the carry and
            // an add of the carry to the count, two instructions a key.
            const unsigned minus_cand = 0u - cand;
#pragma unroll
            for (int m = 0; m < kSlots; ++m) {
                asm("{\n\t.reg .u32 sum;\n\tadd.cc.u32 sum, %1, %2;\n\taddc.u32 %0, %0, 0;\n\t}"
                    : "+r"(n)
                    : "r"(keys[m]), "r"(minus_cand));
            }
        } else {
            for (int m = 0; m < n_slots; ++m) n += key(m) >= cand;
        }
        return n;
    };

    // Search the key bits, high to low, for the largest t with #{key >= t} >= K: the K-th largest
    // key, or an earlier t that already isolates exactly K keys. Bits above the highest one where
    // the smallest and largest keys differ are common to all keys and skipped.
    const bool select = W - lo > top_k;
    // The smallest and largest keys of the window; the largest is always kept (K >= 1), so its
    // score is the maximum of the kept scores that the softmax subtracts.
    unsigned lo_key = 0xffffffffu, hi_key = 0u;
#pragma unroll
    for (int m = 0; m < n_slots; ++m) {
        const unsigned u = key(m);
        if (kWhole || u != 0u) {
            lo_key = min(lo_key, u);
            hi_key = max(hi_key, u);
        }
    }
    lo_key = warp_min(lo_key);
    hi_key = warp_max(hi_key);
    // When the keys >= t are exactly K, every one of them is kept and no tie is broken; else the
    // keys equal to t are kept oldest first (lowest slot) until K are kept. Under selection the
    // keys >= t are exactly K only where the search stopped there: a search that runs to the
    // last bit ends at the K-th largest key with more keys equal to it than are kept, and one
    // that never moves t keeps all W - lo > K keys >= t.
    unsigned t = 0;
    bool exact = !select;
    if (select) {
        t = hi_key;
        if (lo_key != hi_key) {
            const int top = 31 - __clz(lo_key ^ hi_key);
            t = hi_key & ~((2u << top) - 1u);
            for (unsigned bit = 1u << top; bit != 0u; bit >>= 1) {
                const unsigned cand = t | bit;
                const int n = warp_sum(count_at_least(cand));
                if (n >= top_k) {
                    t = cand;
                    if (n == top_k) {
                        exact = true;
                        break;
                    }
                }
            }
        }
    }

    unsigned last_tie = 0;  // 1 + the slot of the last kept tie, in the lane that holds it
    auto keep_score = [&](int m, bool keep) {  // a dropped key's score becomes -inf
        const float s = keep ? score(m) : -INFINITY;
        if constexpr (kSlots > 0) {
            cache[m] = s;
        } else if (lane + 32 * m < W) {
            slot0[m * m_stride] = s;
        }
    };
    if (exact) {
#pragma unroll
        for (int m = 0; m < n_slots; ++m) {
            const unsigned u = key(m);
            keep_score(m, (kWhole || u != 0u) && u >= t);
        }
    } else {
        int above = 0;
#pragma unroll
        for (int m = 0; m < n_slots; ++m) above += key(m) > t;
        const int quota = top_k - warp_sum(above);  // how many keys equal to t are kept
        int ties_seen = 0;
#pragma unroll
        for (int m = 0; m < n_slots; ++m) {
            const int r = lane + 32 * m;
            const unsigned u = key(m);
            const bool tie = u != 0u && u == t;
            const unsigned ties = __ballot_sync(kFull, tie);
            const int rank = ties_seen + __popc(ties & ((1u << lane) - 1u));
            const bool keep = u != 0u && (u > t || (tie && rank < quota));
            if (tie && rank == quota - 1) last_tie = r + 1;
            ties_seen += __popc(ties);
            keep_score(m, keep);
        }
    }
    const float mx = score_of_score_key(hi_key);
    float sum = 0.f;
#pragma unroll
    for (int m = 0; m < n_slots; ++m) {
        const float e = fast_exp(score(m) - mx);
        if constexpr (kSlots > 0) cache[m] = e;  // a cached window keeps its weights
        sum += e;
    }
    // lse = mx + log(sum) as an fp32 pair: mx is exact, log(sum) (sum in [1, W]) one fp32 log,
    // and the pair holds their sum exactly (a two-sum), so its error is the fp32 log's, below the
    // rounding of the fp32 sum itself (an fp64 log of that sum added no accuracy, only fp64 work;
    // log_at_least_one is as accurate as logf here).
    const float total = warp_sum(sum);
    const float log_sum = log_at_least_one(total);
    RowStats row;
    row.lse_hi = __fadd_rn(mx, log_sum);
    const float part = __fsub_rn(row.lse_hi, mx);
    row.lse_lo = __fadd_rn(__fsub_rn(mx, __fsub_rn(row.lse_hi, part)), __fsub_rn(log_sum, part));
    // Without selection t = 0, below every real key; every slot r < W passes r <= r_last where no
    // tie was broken.
    row.tau = t;
    row.r_last = exact ? W : static_cast<int>(warp_max(last_tie)) - 1;
    // A cached window's probabilities are its weights over their sum, as the decode step forms
    // them (a multiply where exp(s - lse) takes two subtractions, a multiply and an ex2): within
    // about three fp32 units of the backward's exp(s - lse), and the backward reads only lse.
    const float inv_total = fast_reciprocal(total);
#pragma unroll
    for (int m = 0; m < n_slots; ++m) {
        const int r = lane + 32 * m;
        if (kWhole || r < W) {
            if constexpr (kSlots > 0) {
                put(m, __fmul_rn(cache[m], inv_total));
            } else {
                put(m, probability(score(m), row.lse_hi, row.lse_lo));
            }
        }
    }
    return row;
}

}  // namespace krause::fused
