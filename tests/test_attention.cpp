// Attention functions against their references: values and gradients on fresh random inputs.
#include "model/attention.h"
#include "model/kernel_check.h"
#include "test_util.h"

#ifdef KRAUSE_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#endif

#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/cuda.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <tuple>

namespace krause {
namespace {

using test::max_abs_diff;

using test::KrauseShape;

// A fresh seed per run: the inputs differ each time the suite runs, and failures print it.
using test::fresh_seed;

struct Inputs {
    at::Tensor q, k, v, log_sigma;
};

Inputs random_inputs(const KrauseShape& s, at::ScalarType type, uint64_t seed) {
    auto gen = at::detail::createCPUGenerator(seed);
    const auto opts = at::TensorOptions().dtype(type);
    Inputs in;
    in.q = at::randn({s.B, s.H, s.T, s.D}, gen, opts).requires_grad_(true);
    in.k = at::randn({s.B, s.H, s.T, s.D}, gen, opts).requires_grad_(true);
    in.v = at::randn({s.B, s.H, s.T, s.D}, gen, opts).requires_grad_(true);
    in.log_sigma = (at::rand({s.H}, gen, opts) * 0.8 + 0.3).requires_grad_(true);
    return in;
}

std::vector<at::Tensor> grads_of(const at::Tensor& out, const Inputs& in, const at::Tensor& dout) {
    return torch::autograd::grad({out}, {in.q, in.k, in.v, in.log_sigma}, {dout});
}

class KrauseWindowed : public ::testing::TestWithParam<KrauseShape> {};

TEST_P(KrauseWindowed, MatchesDenseReferenceValuesAndGradients) {
    const auto s = GetParam();
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE(::testing::Message() << s << " seed " << seed);
    const auto in = random_inputs(s, at::kDouble, seed);
    const auto fast = krause_attention_windowed(in.q, in.k, in.v, in.log_sigma, s.W, s.K);
    const auto ref = krause_attention_reference(in.q, in.k, in.v, in.log_sigma, s.W, s.K);
    ASSERT_EQ(fast.sizes(), ref.sizes());
    EXPECT_LT(max_abs_diff(fast, ref), 1e-10);

    const auto dout = at::randn_like(ref);
    const auto g_fast = grads_of(fast, in, dout);
    const auto g_ref = grads_of(ref, in, dout);
    const char* names[] = {"q", "k", "v", "log_sigma"};
    // With a single attended key the weight is 1 whatever q, k and sigma are.
    const bool single_key = std::min({s.T, s.W, s.K}) == 1;
    for (size_t i = 0; i < g_ref.size(); ++i) {
        EXPECT_LT(max_abs_diff(g_fast[i], g_ref[i]), 1e-9) << "gradient of " << names[i];
        if (!single_key || i == 2) {
            EXPECT_GT(g_ref[i].abs().sum().item<double>(), 0.0) << "gradient of " << names[i];
        }
    }
}

INSTANTIATE_TEST_SUITE_P(OddShapes, KrauseWindowed,
                         ::testing::Values(KrauseShape{2, 3, 5, 4, 8, 3},     // T < W
                                           KrauseShape{1, 2, 37, 8, 8, 5},    // T % W != 0
                                           KrauseShape{2, 2, 20, 4, 6, 10},   // K >= W
                                           KrauseShape{1, 1, 16, 3, 5, 1},    // K = 1
                                           KrauseShape{2, 2, 9, 4, 1, 1},     // W = 1
                                           KrauseShape{1, 4, 50, 16, 16, 12}, // several heads
                                           KrauseShape{1, 2, 64, 8, 16, 16},  // K = W
                                           KrauseShape{1, 1, 1, 4, 4, 2}));   // T = 1

TEST(KrauseAttention, Fp32WindowedWithinTwiceTheReferenceError) {
    const KrauseShape s{2, 4, 100, 16, 24, 12};
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    const auto in64 = random_inputs(s, at::kDouble, seed);
    const auto exact = krause_attention_reference(in64.q, in64.k, in64.v, in64.log_sigma, s.W, s.K);
    auto f32 = [](const at::Tensor& t) { return t.detach().to(at::kFloat); };
    const auto ref32 = krause_attention_reference(f32(in64.q), f32(in64.k), f32(in64.v),
                                                  f32(in64.log_sigma), s.W, s.K);
    const auto fast32 = krause_attention_windowed(f32(in64.q), f32(in64.k), f32(in64.v),
                                                  f32(in64.log_sigma), s.W, s.K);
    const double ref_err = max_abs_diff(ref32, exact);
    const double fast_err = max_abs_diff(fast32, exact);
    EXPECT_LE(fast_err, 2.0 * ref_err + 1e-6) << "reference error " << ref_err;
}

TEST(KrauseAttention, KeepsExactlyTheKNearestKeysOfTheWindow) {
    // One query at distance 0..5 from six keys (key j at distance 5 - j): W = 4, K = 2 must
    // attend only to the two nearest keys of its window, positions 4 and 5.
    auto k = at::zeros({1, 1, 6, 1}, at::kDouble);
    for (int j = 0; j < 6; ++j) k[0][0][j][0] = static_cast<double>(j);
    auto q = at::full({1, 1, 6, 1}, 5.0, at::kDouble);
    auto v = at::eye(6, at::kDouble).view({1, 1, 6, 6});
    const auto log_sigma = at::zeros({1}, at::kDouble);
    const auto qs = q.expand({1, 1, 6, 6}).contiguous();
    const auto ks = at::cat({k, at::zeros({1, 1, 6, 5}, at::kDouble)}, -1);
    const auto out = krause_attention_windowed(qs, ks, v, log_sigma, 4, 2);
    const auto last = out[0][0][5];  // weights over keys, since v is the identity
    EXPECT_NEAR(last[4].item<double>() + last[5].item<double>(), 1.0, 1e-12);
    EXPECT_EQ(last[3].item<double>(), 0.0);
    EXPECT_EQ(last[1].item<double>(), 0.0);
    // Expected ratio exp(-0/2) : exp(-1/2) for sigma = 1.
    EXPECT_NEAR(last[5].item<double>() / last[4].item<double>(), std::exp(0.5), 1e-9);
}

// A fused projection holds q, k, v side by side, heads in order within each: unpack_qkv must
// return exactly the heads that projecting separately and splitting would give, and the packed
// attention the merged heads of the separate one.
TEST(KrauseAttention, PackedProjectionUnpacksToTheSeparateHeads) {
    const int64_t B = 2, T = 11, H = 3, D = 4;
    auto heads = [&](const at::Tensor& x) {  // (B, T, H * D) -> (B, H, T, D)
        return x.view({B, T, H, D}).transpose(1, 2);
    };
    const auto q = at::randn({B, T, H * D}, at::kDouble);
    const auto k = at::randn({B, T, H * D}, at::kDouble);
    const auto v = at::randn({B, T, H * D}, at::kDouble);
    const auto parts = unpack_qkv(at::cat({q, k, v}, -1), H);
    EXPECT_TRUE(parts[0].equal(heads(q)));
    EXPECT_TRUE(parts[1].equal(heads(k)));
    EXPECT_TRUE(parts[2].equal(heads(v)));
    const auto log_sigma = at::rand({H}, at::kDouble);
    const auto packed = krause_attention_packed(at::cat({q, k, v}, -1), H, log_sigma, 5, 3);
    const auto separate = krause_attention_windowed(heads(q), heads(k), heads(v), log_sigma, 5, 3);
    EXPECT_TRUE(packed.equal(separate.transpose(1, 2).reshape({B, T, H * D})));
    EXPECT_THROW(unpack_qkv(q, H), c10::Error);  // width not 3 * H * D
}

TEST(SoftmaxAttention, ReferenceMatchesPerQueryFormula) {
    const uint64_t seed = fresh_seed();
    auto gen = at::detail::createCPUGenerator(seed);
    const auto q = at::randn({2, 3, 11, 5}, gen, at::kDouble);
    const auto k = at::randn({2, 3, 11, 5}, gen, at::kDouble);
    const auto v = at::randn({2, 3, 11, 5}, gen, at::kDouble);
    const auto out = softmax_attention(q, k, v);
    for (int64_t i = 0; i < 11; ++i) {
        const auto qi = q.narrow(2, i, 1);
        const auto ks = k.narrow(2, 0, i + 1);
        const auto w = at::softmax(at::matmul(qi, ks.transpose(-1, -2)) / std::sqrt(5.0), -1);
        const auto expect = at::matmul(w, v.narrow(2, 0, i + 1));
        EXPECT_LT(max_abs_diff(out.narrow(2, i, 1), expect), 1e-12) << "query " << i;
    }
}

TEST(LinearAttention, ChunkedMatchesPrefixSumReferenceValuesAndGradients) {
    for (int64_t T : {1, 63, 64, 150}) {
        const uint64_t seed = fresh_seed();
        SCOPED_TRACE(::testing::Message() << "T " << T << " seed " << seed);
        auto gen = at::detail::createCPUGenerator(seed);
        const auto opts = at::TensorOptions().dtype(at::kDouble);
        const auto q = at::randn({2, 2, T, 8}, gen, opts).requires_grad_(true);
        const auto k = at::randn({2, 2, T, 8}, gen, opts).requires_grad_(true);
        const auto v = at::randn({2, 2, T, 8}, gen, opts).requires_grad_(true);
        const auto fast = linear_attention(q, k, v);
        const auto ref = linear_attention_reference(q, k, v);
        EXPECT_LT(max_abs_diff(fast, ref), 1e-10);
        const auto dout = at::randn_like(ref);
        const auto gf = torch::autograd::grad({fast}, {q, k, v}, {dout});
        const auto gr = torch::autograd::grad({ref}, {q, k, v}, {dout});
        for (size_t i = 0; i < gr.size(); ++i) EXPECT_LT(max_abs_diff(gf[i], gr[i]), 1e-9);
    }
}

TEST(AttentionWeights, KrauseWeightsReproduceTheAttentionOutput) {
    const KrauseShape s{1, 2, 30, 4, 8, 5};
    const auto in = random_inputs(s, at::kDouble, fresh_seed());
    const auto out = krause_attention_windowed(in.q, in.k, in.v, in.log_sigma, s.W, s.K);
    at::Tensor kept;
    const auto w = krause_weights(in.q.narrow(2, 10, 20), in.k, in.log_sigma, 10, s.W, s.K, &kept);
    const auto via_weights = at::matmul(w.to(at::kDouble), in.v);  // (B, H, 20, D)
    EXPECT_LT(max_abs_diff(via_weights, out.narrow(2, 10, 20)), 1e-6);
    EXPECT_TRUE(kept.sum(-1).le(s.K).all().item<bool>());
}


// The error measure that the kernel tests and the bench's validation share.
// The one dispatch decision: the ATen path for fp64, heads over 128 dims and with the fused
// kernels off; the fused CPU loops for fp32 CPU tensors; on a GPU with the kernels built, the
// fused kernels otherwise. Decoding on the CPU and the dense layers there take ATen.
TEST(KernelChoice, CpuTensorsAndBadOptionsTakeNoCudaKernel) {
    const KernelOptions fused;
    const auto cpu = at::zeros({1, 2, 3, 32});
    EXPECT_EQ(krause_path(fused, cpu, 2),
              cpu_has_avx2() ? KrausePath::FusedCpuAvx2 : KrausePath::FusedCpu);
    EXPECT_EQ(krause_path(fused, cpu.to(at::kDouble), 2), KrausePath::Aten);
    EXPECT_FALSE(krause_decode_fused(fused, cpu));
    EXPECT_FALSE(dense_fused(fused, cpu));
    for (int warps : {0, 1, 2, 4, 8}) EXPECT_TRUE(valid_decode_warps(warps)) << warps;
    for (int warps : {-1, 3, 16}) EXPECT_FALSE(valid_decode_warps(warps)) << warps;
    KernelOptions bad;
    bad.decode_warps = 3;
    EXPECT_THROW(bad.validate(), c10::Error);
}

TEST(KernelChoice, OnTheGpuEveryFallbackIsDecidedByTheOneDispatch) {
    if (!fused_kernels_built() || !torch::cuda::is_available()) {
        GTEST_SKIP() << "needs the CUDA kernels and a GPU";
    }
    const KernelOptions fused;
    KernelOptions off;
    off.fused_attention = off.fused_dense = false;
    const auto on = [](at::ScalarType type, int64_t D, int64_t T = 3) {
        return at::zeros({1, 2, T, D}, at::TensorOptions().device(at::kCUDA).dtype(type));
    };
    KernelOptions cuda_cores;
    cuda_cores.tensor_cores = false;
    EXPECT_EQ(krause_path(fused, on(at::kFloat, 32), 2), KrausePath::Fused);
    EXPECT_EQ(krause_path(fused, on(at::kDouble, 32), 2), KrausePath::Aten);
    EXPECT_EQ(krause_path(fused, on(at::kBFloat16, 130), 2), KrausePath::Aten);
    EXPECT_EQ(krause_path(cuda_cores, on(at::kBFloat16, 64), 2), KrausePath::Fused);
    EXPECT_EQ(krause_path(off, on(at::kBFloat16, 64), 2), KrausePath::Aten);
    // Tensor cores for bf16 on compute capability 8.0+, up to kTensorCoreMaxWindow keys after
    // the window is clamped to T.
    const int64_t wide = kTensorCoreMaxWindow + 1;
    EXPECT_EQ(krause_path(fused, on(at::kBFloat16, 64, wide), wide), KrausePath::Fused);
#ifdef KRAUSE_WITH_CUDA
    if (at::cuda::getCurrentDeviceProperties()->major >= 8) {
        EXPECT_EQ(krause_path(fused, on(at::kBFloat16, 64, wide), wide - 1),
                  KrausePath::FusedTensorCores);
        EXPECT_EQ(krause_path(fused, on(at::kBFloat16, 64, wide - 1), 4 * wide),
                  KrausePath::FusedTensorCores);
    }
#endif
    EXPECT_TRUE(krause_decode_fused(fused, on(at::kBFloat16, 64)));
    EXPECT_FALSE(krause_decode_fused(fused, on(at::kDouble, 64)));
    EXPECT_FALSE(krause_decode_fused(off, on(at::kBFloat16, 64)));
    EXPECT_TRUE(dense_fused(fused, on(at::kFloat, 64)));
    EXPECT_FALSE(dense_fused(off, on(at::kFloat, 64)));
}

TEST(KernelCheck, RelativeErrorIsPerRowAndLeavesOutTheWorstThousandth) {
    auto gen = at::detail::createCPUGenerator(fresh_seed());
    const auto exact = at::randn({4000, 8}, gen, at::TensorOptions().dtype(at::kDouble));
    EXPECT_EQ(relative_error(exact, exact), 0.0);
    auto noisy = exact * (1.0 + 1e-3);
    EXPECT_NEAR(relative_error(noisy, exact), 1e-3, 1e-9);
    // Four rows of 4000 (a top-K flip each) are left out; a fifth is not.
    auto flipped = noisy.clone();
    flipped.narrow(0, 0, 4).add_(100.0);
    EXPECT_NEAR(relative_error(flipped, exact), 1e-3, 1e-5);
    flipped.narrow(0, 4, 1).add_(100.0);
    EXPECT_GT(relative_error(flipped, exact), 1e-2);
    EXPECT_EQ(relative_error(at::zeros({3}), at::zeros({3})), 0.0);
    const KernelCheck good{"out", 1e-3, 6e-4, 2 * 6e-4 + kernel_error_floor(at::kBFloat16)};
    const KernelCheck bad{"dq", 5e-3, 6e-4, 2 * 6e-4 + kernel_error_floor(at::kBFloat16)};
    EXPECT_TRUE(good.ok());
    EXPECT_FALSE(bad.ok());
    EXPECT_EQ(describe({good, bad}), "out 1.00e-03 <= 1.20e-03, dq 5.00e-03 > 1.20e-03");
}

// fp8 e4m3 as the decode kernel's rings hold it, for the bench's fp8 check: known bytes decode
// to their values, every finite value goes back to a byte of that value, and any value (beyond
// the range too) to a nearest finite one.
TEST(KernelCheck, E4M3ValuesAndNearestBytes) {
    EXPECT_EQ(e4m3_value(0x38), 1.0f);
    EXPECT_EQ(e4m3_value(0x3c), 1.5f);
    EXPECT_EQ(e4m3_value(0x7e), 448.0f);
    EXPECT_EQ(e4m3_value(0xfe), -448.0f);
    EXPECT_EQ(e4m3_value(0x08), std::ldexp(1.0f, -6));  // the smallest normal
    EXPECT_EQ(e4m3_value(0x01), std::ldexp(1.0f, -9));  // the smallest subnormal
    EXPECT_EQ(e4m3_value(0x00), 0.0f);
    EXPECT_TRUE(std::isnan(e4m3_value(0x7f)));
    EXPECT_TRUE(std::isnan(e4m3_value(0xff)));
    std::vector<float> finite;
    for (int b = 0; b < 256; ++b) {
        if (!std::isnan(e4m3_value(static_cast<uint8_t>(b)))) {
            finite.push_back(e4m3_value(static_cast<uint8_t>(b)));
        }
    }
    ASSERT_EQ(finite.size(), 254u);
    const auto back = e4m3_bytes(at::tensor(finite));
    for (size_t i = 0; i < finite.size(); ++i) {
        EXPECT_EQ(e4m3_value(back[i].item<uint8_t>()), finite[i]);
    }
    const auto x = at::cat({at::randn({2000}, at::kDouble) * 30.0,
                            at::tensor({-1000.0, 500.0, 1e-4, -3e-3}, at::kDouble)});
    const auto bytes = e4m3_bytes(x);
    for (int64_t i = 0; i < x.numel(); ++i) {
        const double want = std::clamp(x[i].item<double>(), -448.0, 448.0);
        double nearest = 1e9;
        for (float v : finite) nearest = std::min(nearest, std::abs(v - want));
        EXPECT_LE(std::abs(e4m3_value(bytes[i].item<uint8_t>()) - want), nearest) << want;
    }
#ifdef KRAUSE_TEST_HAS_FP8
    // PyTorch's own float8 type agrees on every byte.
    const auto all = at::arange(256, at::kInt).to(at::kByte);
    const auto theirs = all.view(at::kFloat8_e4m3fn).to(at::kFloat);
    for (int b = 0; b < 256; ++b) {
        const float mine = e4m3_value(static_cast<uint8_t>(b));
        const float t = theirs[b].item<float>();
        EXPECT_TRUE(std::isnan(mine) ? std::isnan(t) : mine == t) << "byte " << b;
    }
#endif
}

}  // namespace
}  // namespace krause
