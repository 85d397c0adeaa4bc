// The fused CPU Krause attention against its references on fresh random inputs: in fp64 against
// the dense formula to rounding, in fp32 within twice the ATen path's error (the rule the CUDA
// kernels are held to), packed heads, the no-grad path, and the dispatch that chooses it.
#include "model/attention.h"
#include "model/kernel_check.h"
#include "model/krause_attention_cpu.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

namespace krause {
namespace {

using test::fresh_seed;
using test::max_abs_diff;

using Case = test::KrauseShape;

struct Inputs {
    at::Tensor q, k, v, log_sigma, dout;
};

Inputs draw(const Case& c, at::ScalarType type, uint64_t seed) {
    auto gen = at::detail::createCPUGenerator(seed);
    const auto opts = at::TensorOptions().dtype(type);
    Inputs in;
    in.q = at::randn({c.B, c.H, c.T, c.D}, gen, opts);
    in.k = at::randn({c.B, c.H, c.T, c.D}, gen, opts);
    in.v = at::randn({c.B, c.H, c.T, c.D}, gen, opts);
    in.log_sigma = at::rand({c.H}, gen, opts) * 0.8 + 0.3;
    in.dout = at::randn({c.B, c.H, c.T, c.D}, gen, opts);
    return in;
}

using Attention = std::function<at::Tensor(const std::vector<at::Tensor>&)>;

// The output and the gradients of q, k, v and log_sigma for dout.
std::vector<at::Tensor> run(const Attention& f, const Inputs& in) {
    return value_and_grads(f, {in.q, in.k, in.v, in.log_sigma}, in.dout);
}

const char* kNames[] = {"out", "dq", "dk", "dv", "dlog_sigma"};

class KrauseCpu : public ::testing::TestWithParam<Case> {};

TEST_P(KrauseCpu, Fp64EqualsTheDenseFormula) {
    const Case c = GetParam();
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE(::testing::Message() << c << " seed " << seed);
    const auto in = draw(c, at::kDouble, seed);
    const auto mine = run(
        [&](const std::vector<at::Tensor>& x) {
            return krause_attention_cpu(x[0], x[1], x[2], x[3], c.W, c.K);
        },
        in);
    const auto ref = run(
        [&](const std::vector<at::Tensor>& x) {
            return krause_attention_reference(x[0], x[1], x[2], x[3], c.W, c.K);
        },
        in);
    for (size_t t = 0; t < ref.size(); ++t) {
        const double scale = std::max(ref[t].abs().max().item<double>(), 1.0);
        EXPECT_LT(max_abs_diff(mine[t], ref[t]), 1e-10 * scale) << kNames[t];
    }
}

TEST_P(KrauseCpu, Fp32WithinTwiceTheAtenError) {
    const Case c = GetParam();
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE(::testing::Message() << c << " seed " << seed);
    const auto in = draw(c, at::kFloat, seed);
    for (const bool avx2 : {false, true}) {
        if (avx2 && !cpu_has_avx2()) continue;
        SCOPED_TRACE(avx2 ? "avx2 loops" : "baseline loops");
        KernelOptions kernels;
        kernels.cpu_avx2 = avx2;
        ASSERT_EQ(krause_path(kernels, in.q, c.W),
                  avx2 ? KrausePath::FusedCpuAvx2 : KrausePath::FusedCpu);
        const auto checks =
            check_krause_fused(in.q, in.k, in.v, in.log_sigma, in.dout, c.W, c.K, kernels);
        ASSERT_EQ(checks.size(), 5u);
        for (const auto& check : checks) EXPECT_TRUE(check.ok()) << describe(checks);
    }
}

INSTANTIATE_TEST_SUITE_P(OddShapes, KrauseCpu,
                         ::testing::Values(Case{2, 3, 5, 8, 8, 3},      // W > T
                                           Case{3, 2, 37, 12, 8, 5},    // D not a multiple of 8
                                           Case{2, 3, 60, 16, 6, 10},   // K >= W: no selection
                                           Case{1, 1, 40, 16, 5, 1},    // K = 1
                                           Case{2, 2, 30, 8, 1, 1},     // W = 1
                                           Case{1, 2, 90, 24, 33, 33},  // K = W
                                           Case{1, 1, 1, 16, 4, 2},     // T = 1
                                           Case{2, 4, 120, 32, 64,
                                                48}));  // the mnist-small shape, shorter

// krause_kth_gap against the sorted scores of every window, in fp64, with windows shorter than
// K + 1 (no choice: inf) at the start.
TEST(KrauseKthGap, EqualsTheGapOfTheSortedWindowScores) {
    const Case c{2, 3, 40, 8, 7, 3};
    const auto in = draw(c, at::kDouble, fresh_seed());
    const auto gap = krause_kth_gap(in.q, in.k, in.log_sigma, c.W, c.K);
    ASSERT_EQ(gap.sizes(), (std::vector<int64_t>{c.B, c.H, c.T}));
    const auto scores = krause_scores(in.q, in.k, in.log_sigma);  // (B, H, T, T)
    for (int64_t b = 0; b < c.B; ++b) {
        for (int64_t h = 0; h < c.H; ++h) {
            for (int64_t i = 0; i < c.T; ++i) {
                const int64_t lo = std::max<int64_t>(0, i - c.W + 1), n = i - lo + 1;
                const double got = gap[b][h][i].item<double>();
                if (n <= c.K) {
                    EXPECT_TRUE(std::isinf(got) && got > 0) << "query " << i;
                    continue;
                }
                const auto row = std::get<0>(scores[b][h][i].narrow(0, lo, n).sort(0, true));
                const double kth = row[c.K - 1].item<double>(), next = row[c.K].item<double>();
                EXPECT_NEAR(got, (kth - next) / std::max(std::abs(kth), 1.0), 1e-12)
                    << "query " << i;
            }
        }
    }
}

// Where a query's K-th and (K+1)-th scores agree to fp32 rounding, the fused loops and the ATen
// path may keep different keys; the rule leaves such queries out. These inputs (the bench's
// shape) hold such queries: before they were left out, dk was off by 5.7e-5 against a bound of
// 9e-7 and d log_sigma by 7.7e-4 against 3.0e-4.
TEST(KrauseCpuPaths, NearTiesAtTheKthPlaceAreLeftOutOfTheRule) {
    const Case c{4, 4, 784, 32, 64, 48};
    at::manual_seed(69);
    Inputs in;
    in.q = at::randn({c.B, c.H, c.T, c.D});
    in.k = at::randn({c.B, c.H, c.T, c.D});
    in.v = at::randn({c.B, c.H, c.T, c.D});
    in.log_sigma = at::full({c.H}, std::log(2.5));
    in.dout = at::randn({c.B, c.H, c.T, c.D});
    const auto gap = krause_kth_gap(in.q.to(at::kDouble), in.k.to(at::kDouble),
                                    in.log_sigma.to(at::kDouble), c.W, c.K);
    if (gap.min().item<double>() > 1e-7) {
        GTEST_SKIP() << "this LibTorch draws other numbers for the seed: no near tie to test";
    }
    const auto checks =
        check_krause_fused(in.q, in.k, in.v, in.log_sigma, in.dout, c.W, c.K, KernelOptions{});
    ASSERT_EQ(checks.size(), 5u);
    for (const auto& check : checks) EXPECT_TRUE(check.ok()) << describe(checks);
}

// Packed heads (the model's layout) give what the separate tensors give, bit for bit, and so
// does the no-grad path (evaluation) against the autograd one.
TEST(KrauseCpuPaths, PackedHeadsAndNoGradMatchTheSeparateTensors) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    const int64_t B = 2, H = 3, T = 50, D = 16, W = 12, K = 7;
    auto gen = at::detail::createCPUGenerator(seed);
    const auto qkv = at::randn({B, T, 3 * H * D}, gen, at::kFloat);
    const auto ls = at::rand({H}, gen, at::kFloat) * 0.8 + 0.3;
    const auto dout = at::randn({B, T, H * D}, gen, at::kFloat);

    const auto packed = value_and_grads(
        [&](const std::vector<at::Tensor>& x) {
            return krause_attention_packed(x[0], H, x[1], W, K);
        },
        {qkv, ls}, dout);
    const auto separate = value_and_grads(
        [&](const std::vector<at::Tensor>& x) {
            const auto p = unpack_qkv(x[0], H);
            return merge_heads(krause_attention(p[0], p[1], p[2], x[1], W, K));
        },
        {qkv, ls}, dout);
    for (size_t t = 0; t < packed.size(); ++t) EXPECT_TRUE(packed[t].equal(separate[t])) << t;

    torch::NoGradGuard no_grad;
    EXPECT_TRUE(krause_attention_packed(qkv, H, ls, W, K).equal(packed[0]));
}

// The AVX2 copy of the loops is the baseline's code compiled for eight lanes: every output and
// gradient, and a decoding step, must come out bit for bit the same (the backward depends on
// recomputing the forward's scores exactly, whichever copy ran it).
TEST(KrauseCpuPaths, Avx2LoopsGiveTheBaselineBits) {
    if (!cpu_has_avx2()) GTEST_SKIP() << "this CPU (or build) has no AVX2 loops";
    for (const Case& c : {Case{2, 3, 37, 12, 8, 5}, Case{2, 4, 120, 32, 64, 48},
                          Case{1, 2, 70, 64, 40, 33}, Case{2, 2, 9, 8, 16, 3}}) {
        const uint64_t seed = fresh_seed();
        SCOPED_TRACE(::testing::Message() << c << " seed " << seed);
        const auto in = draw(c, at::kFloat, seed);
        auto with = [&](CpuLoops loops) {
            return run(
                [&](const std::vector<at::Tensor>& x) {
                    return krause_attention_cpu(x[0], x[1], x[2], x[3], c.W, c.K, loops);
                },
                in);
        };
        const auto baseline = with(CpuLoops::Baseline), avx2 = with(CpuLoops::Avx2);
        for (size_t t = 0; t < baseline.size(); ++t) {
            EXPECT_TRUE(avx2[t].equal(baseline[t])) << kNames[t];
        }
        const auto q = in.q.narrow(2, 0, 1);
        for (int64_t position : {c.T / 2, c.T - 1, c.T + 5}) {
            const auto a = krause_decode_ring_cpu(q, in.k, in.v, position, in.log_sigma, c.K,
                                                  CpuLoops::Baseline);
            const auto b = krause_decode_ring_cpu(q, in.k, in.v, position, in.log_sigma, c.K,
                                                  CpuLoops::Avx2);
            EXPECT_TRUE(a.equal(b)) << "decode at " << position;
        }
    }
}

TEST(KrauseCpuPaths, DispatchTakesFp32AndLeavesFp64AndOffToAten) {
    const auto f32 = at::zeros({1, 2, 3, 8}), f64 = f32.to(at::kDouble);
    EXPECT_EQ(krause_path(KernelOptions{}, f32, 2),
              cpu_has_avx2() ? KrausePath::FusedCpuAvx2 : KrausePath::FusedCpu);
    EXPECT_EQ(krause_path(KernelOptions{}, f64, 2), KrausePath::Aten);
    KernelOptions baseline;
    baseline.cpu_avx2 = false;
    EXPECT_EQ(krause_path(baseline, f32, 2), KrausePath::FusedCpu);
    KernelOptions off;
    off.fused_attention = false;
    EXPECT_EQ(krause_path(off, f32, 2), KrausePath::Aten);
    EXPECT_STREQ(path_name(KrausePath::FusedCpu), "fused-cpu");
    EXPECT_STREQ(path_name(KrausePath::FusedCpuAvx2), "fused-cpu-avx2");
    // On random inputs the two paths agree to fp32 rounding.
    const uint64_t seed = fresh_seed();
    const auto in = draw(Case{1, 2, 40, 8, 10, 6}, at::kFloat, seed);
    const auto fused = krause_attention(in.q, in.k, in.v, in.log_sigma, 10, 6);
    const auto aten = krause_attention(in.q, in.k, in.v, in.log_sigma, 10, 6, off);
    EXPECT_LT(max_abs_diff(fused, aten), 1e-4) << "seed " << seed;
}

TEST(KrauseCpuPaths, RefusesWhatItDoesNotTake) {
    const auto q = at::zeros({1, 2, 3, 8});
    const auto ls = at::zeros({2});
    EXPECT_THROW(krause_attention_cpu(q.to(at::kBFloat16), q.to(at::kBFloat16), q.to(at::kBFloat16),
                                      ls, 2, 1),
                 c10::Error);
    EXPECT_THROW(krause_attention_cpu(q, q, q, at::zeros({3}), 2, 1), c10::Error);
    EXPECT_THROW(krause_attention_cpu(q, q, q, ls, 0, 1), c10::Error);
    // A NaN input gives NaN rows, not a crash in the selection.
    auto bad = q.clone();
    bad[0][1][2][3] = std::nan("");
    const auto out = krause_attention_cpu(bad, q, q, ls, 2, 1);
    EXPECT_TRUE(out[0][1][2].isnan().all().item<bool>());
    EXPECT_FALSE(out[0][0].isnan().any().item<bool>());
}

struct DecodeCase {
    int64_t S, position, K, D;  // a position of S or more: the ring has wrapped
};

std::vector<DecodeCase> decode_cases() {
    return {{8, 4, 3, 32},    {8, 7, 3, 64},       {128, 127, 96, 32},
            {64, 63, 48, 32}, {1, 0, 1, 16},       {64, 63, 1, 130},
            {8, 13, 3, 32},   {256, 700, 192, 64}, {300, 289, 100, 20}};
}

// fp64 against the ATen step to rounding, wrapped rings included; fp32 within twice the ATen
// step's error (the check the bench runs before it times sampling).
TEST(KrauseCpuDecode, MatchesTheAtenStep) {
    for (const auto& c : decode_cases()) {
        const uint64_t seed = fresh_seed();
        SCOPED_TRACE(::testing::Message() << "S" << c.S << " position " << c.position << " K" << c.K
                                          << " D" << c.D << " seed " << seed);
        auto gen = at::detail::createCPUGenerator(seed);
        const auto q = at::randn({3, 4, 1, c.D}, gen, at::kDouble);
        const auto keys = at::randn({3, 4, c.S, c.D}, gen, at::kDouble);
        const auto values = at::randn({3, 4, c.S, c.D}, gen, at::kDouble);
        const auto ls = at::rand({4}, gen, at::kDouble) * 0.8 + 0.3;
        const auto ref = krause_decode_ring(q, keys, values, c.position, ls, c.K);
        const auto mine = krause_decode_ring_cpu(q, keys, values, c.position, ls, c.K);
        ASSERT_EQ(mine.sizes(), ref.sizes());
        EXPECT_LT(max_abs_diff(mine, ref), 1e-10);

        auto f = [](const at::Tensor& t) { return t.to(at::kFloat); };
        ASSERT_EQ(krause_decode_path(KernelOptions{}, f(q)),
                  cpu_has_avx2() ? DecodePath::FusedCpuAvx2 : DecodePath::FusedCpu);
        const auto checks = check_krause_decode(f(q), f(keys), f(values), c.position, f(ls), c.K);
        ASSERT_EQ(checks.size(), 1u);
        EXPECT_TRUE(checks[0].ok()) << describe(checks);
    }
}

// The forward forms a vector of keys' scores at a time (the keys held transposed), a decoding
// step one key at a time: with the same partial sums in the same order, the forward's last row
// and the step over the same keys agree bit for bit, head sizes with a tail of dims beyond a
// multiple of eight included.
TEST(KrauseCpuDecode, StepEqualsTheForwardsLastRowBitForBit) {
    for (const int64_t D : {16, 37}) {
        const uint64_t seed = fresh_seed();
        SCOPED_TRACE(::testing::Message() << "D" << D << " seed " << seed);
        auto gen = at::detail::createCPUGenerator(seed);
        const int64_t T = 20, S = 24, K = 7;  // the ring not yet wrapped: slot j holds key j
        const auto q = at::randn({2, 3, T, D}, gen, at::kFloat);
        const auto keys = at::randn({2, 3, S, D}, gen, at::kFloat);
        const auto values = at::randn({2, 3, S, D}, gen, at::kFloat);
        const auto ls = at::rand({3}, gen, at::kFloat) * 0.8 + 0.3;
        auto first = [&](const at::Tensor& x) { return x.narrow(2, 0, T).contiguous(); };
        const auto out = krause_attention_cpu(q, first(keys), first(values), ls, S, K);
        const auto step = krause_decode_ring_cpu(q.narrow(2, T - 1, 1).contiguous(), keys,
                                                 values, T - 1, ls, K);
        const auto last = out.narrow(2, T - 1, 1);
        EXPECT_TRUE(step.equal(last)) << max_abs_diff(step, last);
    }
}

// Keys of few distinct values make many exactly equal scores: after the ring wraps, ties must
// go to the oldest keys (by position, not by slot), as in the ATen step.
TEST(KrauseCpuDecode, TiesKeepTheOldestKeysAfterTheRingWraps) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    auto gen = at::detail::createCPUGenerator(seed);
    const int64_t S = 16, D = 8;
    const auto q = at::randint(0, 2, {2, 3, 1, D}, gen, at::kDouble);
    const auto keys = at::randint(0, 2, {2, 3, S, D}, gen, at::kDouble);
    const auto values = at::randn({2, 3, S, D}, gen, at::kDouble);
    const auto ls = at::zeros({3}, at::kDouble);
    for (int64_t position : {5, 15, 16, 21, 40}) {
        for (int64_t K : {1, 3, 7, 12}) {
            const auto ref = krause_decode_ring(q, keys, values, position, ls, K);
            const auto mine = krause_decode_ring_cpu(q, keys, values, position, ls, K);
            EXPECT_LT(max_abs_diff(mine, ref), 1e-12) << "position " << position << " K" << K;
        }
    }
}

}  // namespace
}  // namespace krause
