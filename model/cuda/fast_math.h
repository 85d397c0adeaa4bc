// The softmax's log of the fused forward, written once for the device and the host: the kernels
// take the mantissa's log2 from the hardware, the CPU tests from std::log2, and check the rest
// of the formula against std::log. Plain C++ apart from the __host__ __device__ marks.
#pragma once

#include "model/cuda/host_device.h"

#include <cmath>
#include <cstring>

namespace krause {

constexpr double kLn2 = 0.69314718055994531;

// log2 m for m in [1, 2): the hardware's lg2.approx on the device (absolute error at most 2^-22
// on [0.5, 2]), std::log2 on the host.
KRAUSE_HOST_DEVICE float mantissa_log2(float m) {
#if defined(__CUDA_ARCH__)
    float y;
    asm("lg2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(m));
    return y;
#else
    return std::log2(m);
#endif
}

// a b + c in one rounding.
KRAUSE_HOST_DEVICE float fused_multiply_add(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
    return __fmaf_rn(a, b, c);
#else
    return std::fma(a, b, c);
#endif
}

// ln x for x >= 1 (a softmax's sum of weights, whose largest weight is 1): the exponent e and the
// mantissa m in [1, 2) apart, ln x = log2(m) ln 2 + e ln 2 with e ln 2 added in a high and a low
// part, eight instructions on the device where logf takes 27. With an exact log2 it stays within
// 3.1e-7 of ln x on [1, 256) (the roundings of the product and the last sum); the hardware's log2
// adds at most 2^-22 ln 2 = 1.7e-7, within logf's own bound (one fp32 unit, 4.8e-7 in [4, 8)).
KRAUSE_HOST_DEVICE float log_at_least_one(float x) {
    unsigned bits;
    std::memcpy(&bits, &x, sizeof bits);
    const float e = static_cast<float>(static_cast<int>(bits >> 23) - 127);
    const unsigned m_bits = (bits & 0x007fffffu) | 0x3f800000u;
    float m;
    std::memcpy(&m, &m_bits, sizeof m);
    constexpr float kLn2f = static_cast<float>(kLn2);
    constexpr float kLn2Hi = 0.693145751953125f;       // its low nine mantissa bits are 0
    constexpr float kLn2Lo = 1.42860682028622680e-6f;  // ln 2 - kLn2Hi
    const float ln_m = mantissa_log2(m) * kLn2f;
    return fused_multiply_add(e, kLn2Hi, fused_multiply_add(e, kLn2Lo, ln_m));
}

}  // namespace krause
