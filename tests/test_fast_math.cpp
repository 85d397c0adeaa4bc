// The fused forward's softmax log (model/cuda/fast_math.h) on the host, where the mantissa's log2
// is std::log2: the rest of the formula (the exponent and mantissa apart, ln 2 in two parts)
// against std::log in double, over floats of [1, 256] (the sums of weights of windows up to 256
// keys) and past it.
#include "model/cuda/fast_math.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>

namespace krause {
namespace {

float float_of(uint32_t bits) {
    float x;
    std::memcpy(&x, &bits, sizeof x);
    return x;
}

double error_of(float x) {
    return std::fabs(static_cast<double>(log_at_least_one(x)) - std::log(static_cast<double>(x)));
}

// Every 61st float of [1, 256) and every power of two's neighbours: within 3.1e-7 of ln x (the
// product's and the last sum's roundings; the device's log2 may add 2^-22 ln 2 = 1.7e-7).
TEST(FastMath, LogAtLeastOneWithinItsBoundUpTo256) {
    double worst = 0.0;
    float worst_x = 1.f;
    auto check = [&](float x) {
        const double e = error_of(x);
        if (e > worst) {
            worst = e;
            worst_x = x;
        }
    };
    for (uint32_t b = 0x3f800000u; b < 0x43800000u; b += 61) check(float_of(b));
    for (uint32_t b = 0x3f800000u; b <= 0x43800000u; b += 0x00800000u) {
        for (int d = -2; d <= 2; ++d) {
            const float x = float_of(b + static_cast<uint32_t>(d));
            if (x >= 1.f) check(x);
        }
    }
    EXPECT_LE(worst, 3.1e-7) << "at x = " << worst_x;
    EXPECT_EQ(log_at_least_one(1.f), 0.f);
}

// Larger sums (windows of more keys, the CUDA-core kernels): the same relative accuracy.
TEST(FastMath, LogAtLeastOneOnLargerSums) {
    std::mt19937 gen(20261206);
    std::uniform_real_distribution<double> exponent(0.0, 16.0);
    for (int n = 0; n < 100000; ++n) {
        const float x = static_cast<float>(std::exp2(exponent(gen)));
        const double ln_x = std::log(static_cast<double>(x));
        EXPECT_LE(error_of(x), 6e-8 * ln_x + 2e-7) << "at x = " << x;
        if (HasFailure()) return;
    }
}

}  // namespace
}  // namespace krause
