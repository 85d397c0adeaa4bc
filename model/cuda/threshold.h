// The top-K threshold search of the fused forward, written once for the device and the host: the
// kernels run it with warp-wide counts, and the CPU tests run the same code with plain counts
// against a sort. Plain C++ apart from the __host__ __device__ marks, so a CPU build includes it.
#pragma once

#include "model/cuda/host_device.h"

#include <cmath>
#include <cstring>

namespace krause {

// Unsigned keys in the order of the fp32 scores, so that top-K can select on integer bits.
// Every key of a real score is > 0; 0 marks an empty slot.
KRAUSE_HOST_DEVICE unsigned order_key(float s) {
    unsigned b;
    std::memcpy(&b, &s, sizeof b);
    return b ^ ((b & 0x80000000u) ? 0xffffffffu : 0x80000000u);
}

// The score whose order key is u (u > 0): the inverse of order_key.
KRAUSE_HOST_DEVICE float score_of_key(unsigned u) {
    const unsigned b = u ^ ((u & 0x80000000u) ? 0x80000000u : 0xffffffffu);
    float s;
    std::memcpy(&s, &b, sizeof s);
    return s;
}

// Interpolation steps of kth_largest_key before it falls back to halving the key interval.
constexpr int kInterpolationSteps = 8;

// What kth_largest_key found: a threshold t such that the keys >= t are exactly K (exact), or,
// when no threshold isolates K keys because the K-th largest key is tied, that key (and then the
// keys equal to it are kept oldest first). at_least is #{key >= t}; counts, the calls made to
// the count (for tests and for bounds).
struct KthKey {
    unsigned t;
    int at_least;
    int counts;
};

// sqrt(d) for d >= 0 (0 for d <= 0), only to steer the search: the hardware's reciprocal square
// root on the device, without a branch.
KRAUSE_HOST_DEVICE float steering_sqrt(float d) {
#if defined(__CUDA_ARCH__)
    return d > 0.f ? d * rsqrtf(fmaxf(d, 1e-30f)) : 0.f;
#else
    return d > 0.f ? std::sqrt(d) : 0.f;
#endif
}

// The K-th largest of n keys that all lie in [lo_key, hi_key] (lo_key < hi_key, n > K >= 1),
// given count_at_least(c) = #{key >= c}. Each step counts at a candidate strictly inside the
// interval (a, b) that brackets the answer (#{key >= a} > K; #{key >= b} < K, or b = hi_key not
// yet counted). The first kInterpolationSteps candidates interpolate the counts linearly over
// x = sqrt(s_max - s), a distance from the nearest key like the one the score is made of
// (scores -|q - k|^2 / 2 sigma^2 are spread unevenly, distances about evenly): on trained models'
// windows it finds a threshold isolating K keys in 4-5 counts where a bisection of the key bits
// took 8-12, on the bench's random ones in about 5 instead of 15. Then the key interval is
// halved, so a distribution that interpolates badly still ends within kInterpolationSteps + 33
// counts. An end that moves takes the x interpolated for it, not x of the clamped candidate
// (they differ only where the clamp acted, and x only steers: each count is exact), so a step
// takes no square root.
template <typename CountAtLeast>
KRAUSE_HOST_DEVICE KthKey kth_largest_key(unsigned lo_key, unsigned hi_key, int n, int k,
                                          CountAtLeast count_at_least) {
    const float top = score_of_key(hi_key);
    unsigned a = lo_key, b = hi_key;
    float x_a = steering_sqrt(top - score_of_key(a)), x_b = 0.f;  // x decreases with the key
    int at_a = n, at_b = 1;  // #{key >= b} is at least 1 (b is a key) until it is counted
    bool b_counted = false;
    int counts = 0;
    for (int step = 0; b - a > 1u; ++step) {
        unsigned c;
        float x;
        if (step < kInterpolationSteps) {
            const float num = static_cast<float>(at_a - k), den = static_cast<float>(at_a - at_b);
#if defined(__CUDA_ARCH__)
            const float share = __fdividef(num, den);
#else
            const float share = num / den;
#endif
            x = x_a + (x_b - x_a) * share;
            c = order_key(top - x * x);
            c = c <= a ? a + 1u : c;
            c = c >= b ? b - 1u : c;
        } else {
            c = a + (b - a) / 2u;
            x = 0.5f * (x_a + x_b);
        }
        const int at_c = count_at_least(c);
        ++counts;
        if (at_c == k) return {c, k, counts};
        if (at_c > k) {
            a = c;
            at_a = at_c;
            x_a = x;
        } else {
            b = c;
            at_b = at_c;
            x_b = x;
            b_counted = true;
        }
    }
    // b = a + 1: a is the K-th largest key, unless the largest key b alone reaches K.
    if (!b_counted) {
        const int at_hi = count_at_least(b);
        ++counts;
        if (at_hi >= k) return {b, at_hi, counts};
    }
    return {a, at_a, counts};
}

}  // namespace krause
