// The selection of the decoding step (decode.cu): the groups of threads that attend one query
// together, and the top-K weights of a window's scores by radix selection. Included by decode.cu
// alone: its names keep the internal linkage they had there.
#pragma once

#include "model/cuda/warp.cuh"

#include <cmath>

namespace krause {
namespace {

// The threads that attend one query together. Both kinds give every thread a rank (slot s is
// owned by rank s mod kSize), a barrier, sums, maxima and minima that every thread receives, and
// a prefix count in rank order.
//   WarpGroup: one warp; a block holds several groups.
//   BlockGroup<N>: the N warps of a block, through N words of shared memory of each type.
struct WarpGroup {
    static constexpr int kSize = 32;
    __device__ WarpGroup(unsigned*, float*) {}  // a warp needs no shared memory
    __device__ int rank() const { return threadIdx.x % 32; }
    __device__ void sync() const { __syncwarp(); }
    __device__ float sum(float x) const { return warp_sum(x); }
    __device__ float max(float x) const { return warp_max(x); }
    __device__ unsigned min(unsigned x) const { return warp_min(x); }
    __device__ unsigned max(unsigned x) const { return warp_max(x); }
    // How many threads of lower rank hold x; *total: how many hold it in all.
    __device__ int count_before(bool x, int* total) const {
        const unsigned votes = __ballot_sync(kFull, x);
        *total = __popc(votes);
        return __popc(votes & ((1u << (threadIdx.x % 32)) - 1u));
    }
};

template <int N>
struct BlockGroup {
    static constexpr int kSize = 32 * N;
    unsigned* words;  // (N) shared
    float* reals;     // (N) shared
    __device__ BlockGroup(unsigned* w, float* r) : words(w), reals(r) {}
    __device__ int rank() const { return threadIdx.x; }
    __device__ void sync() const { __syncthreads(); }
    __device__ float sum(float x) const {
        return across(warp_sum(x), reals, [](float a, float b) { return a + b; });
    }
    __device__ float max(float x) const {
        return across(warp_max(x), reals, [](float a, float b) { return fmaxf(a, b); });
    }
    __device__ unsigned min(unsigned x) const {
        return across(warp_min(x), words, [](unsigned a, unsigned b) { return ::min(a, b); });
    }
    __device__ unsigned max(unsigned x) const {
        return across(warp_max(x), words, [](unsigned a, unsigned b) { return ::max(a, b); });
    }
    __device__ int count_before(bool x, int* total) const {
        const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
        const unsigned votes = __ballot_sync(kFull, x);
        if (lane == 0) words[warp] = __popc(votes);
        __syncthreads();
        int before = __popc(votes & ((1u << lane) - 1u)), all = 0;
#pragma unroll
        for (int i = 0; i < N; ++i) {
            const int c = static_cast<int>(words[i]);
            before += i < warp ? c : 0;
            all += c;
        }
        __syncthreads();
        *total = all;
        return before;
    }

private:
    // The warps' values (each the same in all its lanes) combined by op in warp order.
    template <typename T, typename Op>
    __device__ T across(T warp_value, T* scratch, Op op) const {
        if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = warp_value;
        __syncthreads();
        T all = scratch[0];
#pragma unroll
        for (int i = 1; i < N; ++i) all = op(all, scratch[i]);
        __syncthreads();  // scratch is free again
        return all;
    }
};

// Keys a thread holds in registers through the selection: 8 slots per thread covers a window
// of 256 for one warp and 1024 for four.
constexpr int kHeldKeys = 8;
// The selection decides the K-th largest order key 8 bits at a time, from a histogram of those
// bits over the keys that match the bits decided so far.
constexpr int kRadixBins = 256;
// Shared words of one group's selection: the histogram, then the verdict of a pass (the digit,
// the keys in higher bins, the keys in its bin).
constexpr int kSelectWords = kRadixBins + 4;

// The group turns the n scores in w into softmax weights over the top_k largest (0 elsewhere);
// among equal scores the oldest key first, the slots taken in age order from slot `oldest` (ring
// order is age order only until it wraps). The K-th largest order key is found by radix
// selection: starting below the bits every key shares, each pass counts the candidates' next 8
// bits in `words` (kSelectWords, shared) and keeps the bin that holds the K-th key, so a 32-bit
// key takes at most 4 passes of 3 group barriers (a bisection took up to 32 group-wide counts).
// A thread touches only the slots it owns; it holds their keys in registers while selecting when
// they fit (kHeldKeys), else reads them again at each pass.
template <typename Group>
__device__ void top_k_weights(const Group& group, float* w, int n, int top_k, int oldest,
                              unsigned* words) {
    const int r = group.rank();
    auto key = [&](int s) -> unsigned { return s < n ? order_key(w[s]) : 0u; };
    if (n > top_k) {
        const int chunks = (n + Group::kSize - 1) / Group::kSize;  // the same in every thread
        unsigned held[kHeldKeys];
        unsigned lo = 0xffffffffu, hi = 0u;
#pragma unroll
        for (int j = 0; j < kHeldKeys; ++j) {
            held[j] = key(j * Group::kSize + r);
            if (j * Group::kSize + r < n) {
                lo = min(lo, held[j]);
                hi = max(hi, held[j]);
            }
        }
        for (int s = kHeldKeys * Group::kSize + r; s < n; s += Group::kSize) {
            lo = min(lo, key(s));
            hi = max(hi, key(s));
        }
        lo = group.min(lo);
        hi = group.max(hi);
        unsigned t = hi;
        int at_least_t = n;  // #{key >= t}: every key while t lies below them all
        int quota = top_k;   // of the keys equal to t, how many are kept (the oldest)
        if (lo != hi) {
            // Every key shares with hi the bits above `high`; t takes them, then a digit per pass.
            int high = 31 - __clz(lo ^ hi);
            unsigned prefix = hi & ~((2u << high) - 1u);
            int need = top_k;  // keys still to keep among those matching prefix above `high`
            unsigned* hist = words;
            unsigned* verdict = words + kRadixBins;
            while (true) {
                const int low = max(high - 7, 0);
                const unsigned digit = (2u << (high - low)) - 1u;  // mask of the pass's bits
                const unsigned decided = ~((2u << high) - 1u);    // the bits above them
                for (int b = r; b < kRadixBins; b += Group::kSize) hist[b] = 0u;
                group.sync();
                auto add = [&](unsigned u) {
                    if ((u & decided) == prefix) atomicAdd(&hist[(u >> low) & digit], 1u);
                };
                if (chunks <= kHeldKeys) {
#pragma unroll
                    for (int j = 0; j < kHeldKeys; ++j) {
                        if (j < chunks && j * Group::kSize + r < n) add(held[j]);
                    }
                } else {
                    for (int s = r; s < n; s += Group::kSize) add(key(s));
                }
                group.sync();
                if (r < 32) {
                    // The group's first warp finds the bin b with fewer than `need` keys in the
                    // bins above it and at least `need` in b and above: lane l scans bins
                    // 8l .. 8l + 7.
                    const uint4 a = reinterpret_cast<const uint4*>(hist)[2 * r];
                    const uint4 c = reinterpret_cast<const uint4*>(hist)[2 * r + 1];
                    const unsigned bins[8] = {a.x, a.y, a.z, a.w, c.x, c.y, c.z, c.w};
                    unsigned mine = 0u;
#pragma unroll
                    for (int i = 0; i < 8; ++i) mine += bins[i];
                    unsigned from = mine;  // keys in this lane's bins and the higher lanes'
#pragma unroll
                    for (int o = 1; o < 32; o <<= 1) {
                        const unsigned up = __shfl_down_sync(kFull, from, o);
                        if (r + o < 32) from += up;
                    }
                    unsigned over = from - mine, found_over = 0u, found_count = 0u;
                    int found = -1;
#pragma unroll
                    for (int i = 7; i >= 0; --i) {
                        if (over < static_cast<unsigned>(need) &&
                            over + bins[i] >= static_cast<unsigned>(need)) {
                            found = i;
                            found_over = over;
                            found_count = bins[i];
                        }
                        over += bins[i];
                    }
                    if (found >= 0) {  // one lane of the warp
                        verdict[0] = static_cast<unsigned>(8 * r + found);
                        verdict[1] = found_over;
                        verdict[2] = found_count;
                    }
                }
                group.sync();
                const unsigned bin = verdict[0], in_bin = verdict[2];
                prefix |= bin << low;
                need -= static_cast<int>(verdict[1]);
                if (in_bin == static_cast<unsigned>(need)) {
                    // The keys >= prefix (its lower bits 0) are exactly the K largest.
                    t = prefix;
                    at_least_t = top_k;
                    break;
                }
                if (low == 0) {
                    // Every bit is decided: t is the K-th largest key, which more keys share
                    // than the `need` kept.
                    t = prefix;
                    at_least_t = top_k - need + static_cast<int>(in_bin);
                    quota = need;
                    break;
                }
                high = low - 1;
            }
        }
        if (at_least_t == top_k) {
            // The keys >= t are exactly the K largest: no tie to rank, each thread drops its own.
            for (int s = r; s < n; s += Group::kSize) {
                if (key(s) < t) w[s] = -INFINITY;
            }
        } else {
            // Ties are ranked by age: thread r takes age a = a0 + r, in slot (a + oldest) % n.
            // Each slot is read and written by one thread here, but not the one that owns it
            // below.
            int ties_seen = 0;
            for (int a0 = 0; a0 < n; a0 += Group::kSize) {
                const int a = a0 + r;
                const int s = a >= n ? n : a + oldest < n ? a + oldest : a + oldest - n;
                const unsigned u = key(s);
                const bool tie = u != 0u && u == t;
                int ties = 0;
                const int rank = ties_seen + group.count_before(tie, &ties);
                const bool keep = u > t || (tie && rank < quota);
                ties_seen += ties;
                if (a < n && !keep) w[s] = -INFINITY;
            }
            group.sync();
        }
    }
    float mx = -INFINITY;
    for (int s = r; s < n; s += Group::kSize) mx = fmaxf(mx, w[s]);
    mx = group.max(mx);
    float sum = 0.f;
    for (int s = r; s < n; s += Group::kSize) sum += fast_exp(w[s] - mx);
    // exp(s - max) / sum, as softmax forms it. exp(s - lse) with an fp32 lse would scale every
    // weight by one common error of up to half an ulp of |lse| (1e-6 at |lse| ~ 20), three times
    // the error of the ATen step.
    const float inv_sum = 1.f / group.sum(sum);
    for (int s = r; s < n; s += Group::kSize) w[s] = fast_exp(w[s] - mx) * inv_sum;
}

}  // namespace
}  // namespace krause
