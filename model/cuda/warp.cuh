// Warp-level helpers shared by the CUDA kernels (included by .cu files only): reductions over
// the 32 lanes of a full warp, and the exponential and reciprocal of the softmaxes (their log is
// fast_math.h's, which the CPU tests replay). The integer order of fp32
// scores that top-K selects on (order_key, score_of_key) comes from threshold.h, which the CPU
// loops share.
#pragma once

#include "model/cuda/fast_math.h"
#include "model/cuda/threshold.h"

namespace krause {

constexpr unsigned kFull = 0xffffffffu;  // every lane of a warp

__device__ __forceinline__ int warp_sum(int x) {
#if __CUDA_ARCH__ >= 800
    return __reduce_add_sync(kFull, x);
#else
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(kFull, x, o);
    return x;
#endif
}

__device__ __forceinline__ unsigned warp_min(unsigned x) {
#if __CUDA_ARCH__ >= 800
    return __reduce_min_sync(kFull, x);
#else
    for (int o = 16; o > 0; o >>= 1) x = min(x, __shfl_xor_sync(kFull, x, o));
    return x;
#endif
}

__device__ __forceinline__ unsigned warp_max(unsigned x) {
#if __CUDA_ARCH__ >= 800
    return __reduce_max_sync(kFull, x);
#else
    for (int o = 16; o > 0; o >>= 1) x = max(x, __shfl_xor_sync(kFull, x, o));
    return x;
#endif
}

__device__ __forceinline__ float warp_max(float x) {
    for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(kFull, x, o));
    return x;
}

__device__ __forceinline__ float warp_sum(float x) {
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(kFull, x, o);
    return x;
}

__device__ __forceinline__ double warp_sum(double x) {
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(kFull, x, o);
    return x;
}

// The order key of a training score s = -||q - k||^2 / (2 sigma^2), which is never positive
// (-0 for a zero distance): for a set sign bit order_key is the complement of the bits, one
// instruction here where order_key takes two or three. The forward's top-K and the backward's
// kept tests form every key by this one function, so they agree on every kept set whatever the
// score; for s <= 0 (and -0) the keys equal order_key's bit for bit.
__device__ __forceinline__ unsigned score_key(float s) { return ~__float_as_uint(s); }

// The score whose score_key is u: its inverse.
__device__ __forceinline__ float score_of_score_key(unsigned u) { return __uint_as_float(~u); }

constexpr float kLog2e = 1.4426950408889634f;

// 2^x by the hardware's ex2 (results below 2^-126 flush to 0, and 2^-inf = 0).
__device__ __forceinline__ float fast_exp2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

// e^x as 2^(x log2 e) by the hardware's ex2: two instructions where expf takes about nine (it
// splits off the integer part in extended precision first). Rounding x log2 e costs up to
// |x| 2^-24 relative, per element and never common to a row (x = s - lse is near 0 for the
// probabilities that carry the mass); results below 2^-126 flush to 0, and e^-inf = 0.
__device__ __forceinline__ float fast_exp(float x) { return fast_exp2(x * kLog2e); }

// 1 / x by the hardware's reciprocal, within one fp32 unit (__frcp_rn's half a unit takes a
// refinement and a range check, about nine instructions more); results below 2^-126 flush to 0.
__device__ __forceinline__ float fast_reciprocal(float x) {
    float y;
    asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

}  // namespace krause
