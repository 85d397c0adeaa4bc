// Equal scores at the K-th place: every Krause path keeps the oldest keys first (model/attention.h).
// Integer-valued queries and keys make exact ties common and keep every distance exact in fp32
// and bf16, so the references, the fused kernels and decoding must pick the same keys.
#include "model/attention.h"
#include "model/kernel_check.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/cuda.h>

#include <algorithm>
#include <random>
#include <vector>

#ifdef KRAUSE_WITH_CUDA
#include "model/krause_attention_cuda.h"
#endif

namespace krause {
namespace {

using test::max_abs_diff;

struct TieShape {
    int64_t B, H, T, D, W, K;
};

// The devices to run on: the CPU, and the GPU when there is one and the kernels are built.
std::vector<at::Device> devices() {
    std::vector<at::Device> out{at::kCPU};
#ifdef KRAUSE_WITH_CUDA
    if (torch::cuda::is_available()) out.emplace_back(at::kCUDA);
#endif
    return out;
}

// Entries drawn from {-1, 0, 1}: with a few dims, many keys of a window are equally far away.
at::Tensor small_integers(at::IntArrayRef shape, at::Generator& gen) {
    return at::randint(-1, 2, shape, gen, at::TensorOptions().dtype(at::kDouble));
}

// fp64 inputs of shape s whose scores tie often: q and k of small integers, v normal, one sigma
// for every head.
struct TieInputs {
    at::Tensor q, k, v, ls;
};
TieInputs tie_inputs(const TieShape& s, at::Generator& gen) {
    TieInputs x;
    x.q = small_integers({s.B, s.H, s.T, s.D}, gen);
    x.k = small_integers({s.B, s.H, s.T, s.D}, gen);
    x.v = at::randn({s.B, s.H, s.T, s.D}, gen, at::TensorOptions().dtype(at::kDouble));
    x.ls = at::full({s.H}, 0.2, at::kDouble);
    return x;
}

// The fused forward where it exists (fp32 inputs on a GPU), else the windowed CPU path.
at::Tensor forward_on(const at::Device& device, const at::Tensor& q, const at::Tensor& k,
                      const at::Tensor& v, const at::Tensor& ls, int64_t W, int64_t K) {
    auto on = [&](const at::Tensor& t) { return t.to(device, at::kFloat); };
#ifdef KRAUSE_WITH_CUDA
    if (device.is_cuda()) {
        return krause_attention_cuda(on(q), on(k), on(v), on(ls), W, K, /*tensor_cores=*/false)
            .cpu();
    }
#endif
    return krause_attention_windowed(on(q), on(k), on(v), on(ls), W, K).cpu();
}

TEST(KrauseTies, AllEqualScoresKeepTheOldestKeysOfEachWindow) {
    const TieShape s{2, 3, 40, 8, 12, 5};
    auto gen = at::detail::createCPUGenerator(test::fresh_seed());
    const auto zeros = at::zeros({s.B, s.H, s.T, s.D}, at::kDouble);  // every score is 0
    const auto v = at::randn({s.B, s.H, s.T, s.D}, gen, at::TensorOptions().dtype(at::kDouble));
    const auto ls = at::full({s.H}, 0.3, at::kDouble);
    // Query i keeps keys first .. first + K - 1 of its window, first = max(0, i - W + 1).
    auto expect = at::empty_like(v);
    for (int64_t i = 0; i < s.T; ++i) {
        const int64_t first = std::max<int64_t>(0, i - s.W + 1);
        const int64_t kept = std::min(s.K, i - first + 1);
        expect.narrow(2, i, 1).copy_(v.narrow(2, first, kept).mean(2, /*keepdim=*/true));
    }
    EXPECT_LT(max_abs_diff(krause_attention_reference(zeros, zeros, v, ls, s.W, s.K), expect),
              1e-12);
    EXPECT_LT(max_abs_diff(krause_attention_windowed(zeros, zeros, v, ls, s.W, s.K), expect),
              1e-12);
    for (const auto& device : devices()) {
        SCOPED_TRACE(device.str());
        EXPECT_LT(max_abs_diff(forward_on(device, zeros, zeros, v, ls, s.W, s.K).to(at::kDouble),
                               expect),
                  1e-5);
    }
}

TEST(KrauseTies, ManyEqualScoresPickTheSameKeysInEveryForwardPath) {
    const uint64_t seed = test::fresh_seed();
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    auto gen = at::detail::createCPUGenerator(seed);
    for (const auto s : {TieShape{2, 2, 70, 4, 16, 5}, TieShape{1, 3, 300, 2, 128, 96},
                         TieShape{2, 2, 64, 3, 8, 1}}) {
        SCOPED_TRACE(::testing::Message() << "T" << s.T << " D" << s.D << " W" << s.W << " K"
                                          << s.K);
        const auto [q, k, v, ls] = tie_inputs(s, gen);
        const auto ref = krause_attention_reference(q, k, v, ls, s.W, s.K);
        EXPECT_LT(max_abs_diff(krause_attention_windowed(q, k, v, ls, s.W, s.K), ref), 1e-12);
        for (const auto& device : devices()) {
            SCOPED_TRACE(device.str());
            EXPECT_LT(max_abs_diff(forward_on(device, q, k, v, ls, s.W, s.K).to(at::kDouble), ref),
                      1e-5);
        }
    }
}

// The backward passes find the kept keys again from the forward's threshold (the K-th score and
// the slot of the last kept tie) on scores they recompute: with many exact ties at the K-th
// place, every gradient must still be the reference's. One key kept or dropped in error moves a
// row by about 1/K, far above rounding.
TEST(KrauseTies, ManyEqualScoresGiveTheReferenceGradientsOnEveryPath) {
    const uint64_t seed = test::fresh_seed();
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    auto gen = at::detail::createCPUGenerator(seed);
    struct Path {
        at::Device device;
        at::ScalarType type;
        bool tensor_cores;
    };
    std::vector<Path> paths{{at::kCPU, at::kFloat, false}};
    for (const auto& device : devices()) {
        if (!device.is_cuda()) continue;
        paths.push_back({device, at::kFloat, false});
        paths.push_back({device, at::kBFloat16, false});
        paths.push_back({device, at::kBFloat16, true});
    }
    for (const auto s : {TieShape{2, 2, 70, 4, 16, 5}, TieShape{1, 3, 300, 2, 128, 96},
                         TieShape{2, 2, 64, 3, 8, 1}, TieShape{1, 2, 200, 64, 40, 12}}) {
        const auto q = small_integers({s.B, s.H, s.T, s.D}, gen);
        const auto k = small_integers({s.B, s.H, s.T, s.D}, gen);
        const auto ls = at::full({s.H}, 0.2, at::kDouble);
        for (const auto& path : paths) {
            SCOPED_TRACE(::testing::Message()
                         << "T" << s.T << " D" << s.D << " W" << s.W << " K" << s.K << " "
                         << path.device << " " << path.type << " tensor cores "
                         << path.tensor_cores);
            // v and dO rounded to the path's dtype first: the reference sees what the path sees.
            auto rounded = [&](at::IntArrayRef shape) {
                return at::randn(shape, gen, at::TensorOptions().dtype(at::kDouble))
                    .to(path.type)
                    .to(at::kDouble);
            };
            const auto v = rounded({s.B, s.H, s.T, s.D});
            const auto dout = rounded({s.B, s.H, s.T, s.D});
            auto grads = [&](const std::vector<at::Tensor>& x, const at::Tensor& g, bool fused) {
                std::vector<at::Tensor> leaves;
                for (const auto& t : x) leaves.push_back(t.detach().requires_grad_(true));
                KernelOptions kernels;
                kernels.tensor_cores = path.tensor_cores;
                const auto out =
                    fused ? krause_attention(leaves[0], leaves[1], leaves[2], leaves[3], s.W,
                                             s.K, kernels)
                          : krause_attention_reference(leaves[0], leaves[1], leaves[2],
                                                       leaves[3], s.W, s.K);
                auto d = torch::autograd::grad({out}, leaves, {g.to(out.scalar_type())});
                for (auto& t : d) t = t.to(at::kDouble).cpu();
                return d;
            };
            const auto ref = grads({q, k, v, ls}, dout, false);
            auto on = [&](const at::Tensor& t) { return t.to(path.device, path.type); };
            const auto ls_on = ls.to(path.device, at::kFloat);
            if (path.device.is_cuda()) {
                KernelOptions kernels;
                kernels.tensor_cores = path.tensor_cores;
                ASSERT_NE(krause_path(kernels, on(q), s.W), KrausePath::Aten);
            }
            const auto mine = grads({on(q), on(k), on(v), ls_on}, on(dout), true);
            // bf16 gradients are rounded to 8 bits; fp32 ones hold the reference to ~1e-6.
            const double tol = path.type == at::kFloat ? 1e-4 : 2e-2;
            const char* names[] = {"dq", "dk", "dv", "dlog_sigma"};
            for (size_t t = 0; t < 4; ++t) {
                // d log_sigma sums ds * s over every pair of a head: its rounding is absolute.
                const double scale = std::max(ref[t].abs().max().item<double>(), 1e-12);
                const double floor = t == 3 ? kDlogSigmaFloor : 0.0;
                EXPECT_LT(max_abs_diff(mine[t], ref[t]), tol * scale + floor) << names[t];
            }
        }
    }
}

// Token by token through a ring of W slots, far past its first wrap, every decoding form equals
// the forward pass: ties are ranked by age, not by slot.
TEST(KrauseTies, DecodingAfterTheRingWrapsKeepsTheOldestKeysLikeTheForward) {
    const uint64_t seed = test::fresh_seed();
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    auto gen = at::detail::createCPUGenerator(seed);
    const TieShape s{2, 2, 50, 3, 8, 3};
    const auto [q, k, v, ls] = tie_inputs(s, gen);
    const auto forward = krause_attention_reference(q, k, v, ls, s.W, s.K);
    for (const auto& device : devices()) {
        SCOPED_TRACE(device.str());
        const auto type = device.is_cuda() ? at::kFloat : at::kDouble;
        auto on = [&](const at::Tensor& t) { return t.to(device, type); };
        auto ring_keys = at::zeros({s.B, s.H, s.W, s.D}, on(q).options());
        auto ring_values = at::zeros_like(ring_keys);
        auto step_keys = at::zeros_like(ring_keys), step_values = at::zeros_like(ring_keys);
        const double tol = type == at::kDouble ? 1e-12 : 1e-5;
        for (int64_t t = 0; t < s.T; ++t) {
            SCOPED_TRACE(::testing::Message() << "position " << t);
            const auto row = [&](const at::Tensor& x) { return on(x.narrow(2, t, 1)); };
            ring_keys.narrow(2, t % s.W, 1).copy_(row(k));
            ring_values.narrow(2, t % s.W, 1).copy_(row(v));
            const auto expect = forward.narrow(2, t, 1);
            auto check = [&](const at::Tensor& got) {
                EXPECT_LT(max_abs_diff(got.to(at::kDouble).cpu(), expect), tol);
            };
            check(krause_decode_ring(row(q), ring_keys, ring_values, t, on(ls), s.K));
            const auto position = at::full({1}, t, on(q).options().dtype(at::kLong));
            check(krause_decode_step(row(q), row(k), row(v), step_keys, step_values, position,
                                     on(ls), s.K));
#ifdef KRAUSE_WITH_CUDA
            if (device.is_cuda()) {
                check(krause_decode_cuda(row(q), ring_keys, ring_values, t, on(ls), s.K));
                auto fused_keys = ring_keys.clone(), fused_values = ring_values.clone();
                check(krause_decode_step_cuda(row(q), row(k), row(v), fused_keys, fused_values,
                                              position, on(ls), s.K));
            }
#endif
        }
    }
}

#ifdef KRAUSE_WITH_CUDA
// With key norms the replayable step forms its distances on tensor cores (bf16 and fp16 rings,
// head size 64). Keys of -1, 0 and 1 tie most scores, exactly in both forms; the kept keys must
// still be the oldest of the tied ones, as in the forward pass, long after the ring wraps.
TEST(KrauseTies, DecodeStepOnTensorCoresKeepsTheOldestKeys) {
    if (!torch::cuda::is_available()) GTEST_SKIP() << "needs a GPU";
    const uint64_t seed = test::fresh_seed();
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    auto gen = at::detail::createCPUGenerator(seed);
    const TieShape s{2, 2, 60, 64, 16, 5};
    const auto [q, k, v, ls] = tie_inputs(s, gen);
    const auto o = at::TensorOptions().device(at::kCUDA);
    for (auto ring : {at::kBFloat16, at::kHalf}) {
        SCOPED_TRACE(::testing::Message() << "ring " << ring);
        const auto held = v.to(ring).to(at::kDouble);  // the values the ring holds
        const auto forward = krause_attention_reference(q, k, held, ls, s.W, s.K);
        auto keys = at::zeros({s.B, s.H, s.W, s.D}, o.dtype(ring));
        auto values = at::zeros_like(keys);
        auto norms = at::zeros({s.B, s.H, s.W}, o.dtype(at::kFloat));
        for (int64_t t = 0; t < s.T; ++t) {
            SCOPED_TRACE(::testing::Message() << "position " << t);
            const auto row = [&](const at::Tensor& x) {
                return x.narrow(2, t, 1).to(at::kCUDA, ring);
            };
            const auto position = at::full({1}, t, o.dtype(at::kLong));
            const auto got = krause_decode_step_cuda(row(q), row(k), row(v), keys, values,
                                                     position, ls.to(o.dtype(at::kFloat)), s.K,
                                                     0, norms);
            // Rounded to the ring's dtype: half a unit in the last place of bf16 values below 4
            // is 2^-7.
            EXPECT_LT(max_abs_diff(got.cpu(), forward.narrow(2, t, 1)), 1e-2);
        }
        EXPECT_TRUE(at::equal(norms.cpu(), k.narrow(2, s.T - s.W, s.W)
                                               .roll(s.T % s.W, 2)
                                               .pow(2)
                                               .sum(-1)
                                               .to(at::kFloat)));
    }
}
#endif

}  // namespace
}  // namespace krause
