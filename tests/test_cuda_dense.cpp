// The fused dense-layer kernels (LayerNorm, Linear's bias gradient) and the packed q/k/v path of
// the Krause kernels against their ATen references. Built with the CUDA kernels only; each test
// skips, saying why, without a GPU.
#include "model/attention.h"
#include "model/dense.h"
#include "model/kernel_check.h"
#include "model/transformer.h"
#include "test_util.h"
#include "training/autocast.h"

#ifdef KRAUSE_WITH_CUDA
#include "model/dense_cuda.h"
#include "model/krause_attention_cuda.h"
#endif

#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/cuda.h>

#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace krause {
namespace {

#ifdef KRAUSE_WITH_CUDA
#define SKIP_WITHOUT_CUDA()                                                             \
    do {                                                                                \
        if (!torch::cuda::is_available()) GTEST_SKIP() << "no GPU visible to LibTorch"; \
    } while (0)

using test::fresh_seed;

at::Tensor draw(at::IntArrayRef shape, at::Generator& gen, at::ScalarType type = at::kFloat) {
    return at::randn(shape, gen, at::kFloat).to(type).to(at::kCUDA);
}

// Max-norm error relative to the max norm of the exact answer.
double rel_err(const at::Tensor& x, const at::Tensor& exact) {
    const auto e = exact.to(at::kDouble).cpu();
    const double scale = e.abs().max().item<double>();
    const double err = (x.to(at::kDouble).cpu() - e).abs().max().item<double>();
    return scale > 0 ? err / scale : err;
}

// The packed kernels read q, k, v where the fused projection left them and write one gradient:
// the arithmetic is the separate-input path's, so the results agree bit for bit.
TEST(CudaPackedKrause, EqualsSeparateInputsBitForBit) {
    SKIP_WITHOUT_CUDA();
    struct Case {
        int64_t B, H, T, D, W, K;
    };
    for (const auto c : {Case{2, 8, 784, 32, 128, 96}, Case{3, 4, 37, 64, 8, 5},
                         Case{1, 2, 130, 48, 33, 33}}) {
        for (auto type : {at::kFloat, at::kBFloat16}) {
            const uint64_t seed = fresh_seed();
            SCOPED_TRACE(::testing::Message() << "B" << c.B << " H" << c.H << " T" << c.T << " D"
                                              << c.D << " " << type << " seed " << seed);
            auto gen = at::detail::createCPUGenerator(seed);
            const auto qkv = draw({c.B, c.T, 3 * c.H * c.D}, gen, type);
            const auto log_sigma = (at::rand({c.H}, gen) * 0.8 + 0.3).to(at::kCUDA);
            const auto g = draw({c.B, c.T, c.H * c.D}, gen, type);
            const auto packed = value_and_grads(
                [&](const std::vector<at::Tensor>& x) {
                    return krause_attention_packed_cuda(x[0], c.H, x[1], c.W, c.K,
                                                        type == at::kBFloat16);
                },
                {qkv, log_sigma}, g);
            const auto parts = unpack_qkv(qkv, c.H);
            const auto separate = value_and_grads(
                [&](const std::vector<at::Tensor>& x) {
                    const auto out = krause_attention_cuda(x[0], x[1], x[2], x[3], c.W, c.K,
                                                           type == at::kBFloat16);
                    return out.transpose(1, 2).reshape({c.B, c.T, c.H * c.D});
                },
                {parts[0].contiguous(), parts[1].contiguous(), parts[2].contiguous(), log_sigma},
                g);
            EXPECT_TRUE(packed[0].equal(separate[0]));
            const auto dparts = unpack_qkv(packed[1], c.H);
            for (int i = 0; i < 3; ++i) EXPECT_TRUE(dparts[i].equal(separate[1 + i])) << i;
            EXPECT_TRUE(packed[2].equal(separate[4]));
        }
    }
}

// DESIGN.md's rule against an fp64 reference: the fused error at most twice ATen's in fp32.
TEST(CudaDense, LayerNormWithinTwiceTheAtenError) {
    SKIP_WITHOUT_CUDA();
    const char* names[] = {"y", "dx", "dweight", "dbias"};
    for (const int64_t d : {128, 256, 512}) {
        for (const int64_t N : {1, 37, 5000}) {
            const uint64_t seed = fresh_seed();
            SCOPED_TRACE(::testing::Message() << "N " << N << " d " << d << " seed " << seed);
            auto gen = at::detail::createCPUGenerator(seed);
            const auto x = draw({N, d}, gen) * 3 + 1;
            const auto w = draw({d}, gen), b = draw({d}, gen), g = draw({N, d}, gen);
            auto aten = [&](const std::vector<at::Tensor>& t) {
                return at::layer_norm(t[0], {d}, t[1], t[2], 1e-5);
            };
            auto fused = [&](const std::vector<at::Tensor>& t) {
                return layer_norm_cuda(t[0], t[1], t[2], 1e-5);
            };
            auto as64 = [](const at::Tensor& t) { return t.to(at::kDouble); };
            const auto exact = value_and_grads(aten, {as64(x), as64(w), as64(b)}, g);
            const auto ref = value_and_grads(aten, {x, w, b}, g);
            const auto mine = value_and_grads(fused, {x, w, b}, g);
            for (size_t i = 0; i < exact.size(); ++i) {
                ASSERT_EQ(mine[i].sizes(), exact[i].sizes()) << names[i];
                EXPECT_EQ(mine[i].scalar_type(), at::kFloat) << names[i];
                const double e_mine = rel_err(mine[i], exact[i]);
                const double e_ref = rel_err(ref[i], exact[i]);
                EXPECT_LE(e_mine, 2 * e_ref + 1e-6)
                    << names[i] << ": " << e_mine << " vs " << e_ref;
            }
        }
    }
}

// Under bf16 autocast the fused LayerNorm returns the fp32 result rounded to bf16 (what the next
// Linear's cast would do), and takes a bf16 gradient.
TEST(CudaDense, LayerNormUnderAutocastRoundsItsOutputToBf16) {
    SKIP_WITHOUT_CUDA();
    auto gen = at::detail::createCPUGenerator(fresh_seed());
    const int64_t N = 300, d = 256;
    const auto x = draw({N, d}, gen), w = draw({d}, gen), b = draw({d}, gen);
    const auto g = draw({N, d}, gen, at::kBFloat16);
    const auto plain = value_and_grads(
        [&](const std::vector<at::Tensor>& t) { return layer_norm_cuda(t[0], t[1], t[2], 1e-5); },
        {x, w, b}, g.to(at::kFloat));
    std::vector<at::Tensor> cast;
    {
        CudaAutocast autocast(true);
        cast = value_and_grads(
            [&](const std::vector<at::Tensor>& t) {
                return layer_norm_cuda(t[0], t[1], t[2], 1e-5);
            },
            {x, w, b}, g);
    }
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    ASSERT_EQ(cast[0].scalar_type(), at::kBFloat16);
    EXPECT_TRUE(cast[0].equal(plain[0].to(at::kBFloat16)));
#endif
    for (size_t i = 1; i < cast.size(); ++i) {
        EXPECT_EQ(cast[i].scalar_type(), at::kFloat);
        EXPECT_LT(rel_err(cast[i], plain[i]), 1e-5) << i;
    }
}

// A decoding step's residual addition and LayerNorm in one kernel: the sum exactly what x + r
// gives, the LayerNorm of that sum within twice ATen's error, in the stream's dtype, for fp32 and
// bf16 streams and parameters (sampling keeps a bf16 copy of the model).
TEST(CudaDense, AddLayerNormEqualsTheSumAndNormalizesWithinTwiceTheAtenError) {
    SKIP_WITHOUT_CUDA();
    torch::NoGradGuard no_grad;
    struct Types {
        at::ScalarType x, w;
    };
    for (const auto t : {Types{at::kFloat, at::kFloat}, Types{at::kBFloat16, at::kBFloat16},
                         Types{at::kBFloat16, at::kFloat}}) {
        for (const int64_t d : {128, 256, 512}) {
            for (const int64_t N : {1, 37, 2000}) {
                const uint64_t seed = fresh_seed();
                SCOPED_TRACE(::testing::Message() << "N " << N << " d " << d << " x " << t.x
                                                  << " w " << t.w << " seed " << seed);
                auto gen = at::detail::createCPUGenerator(seed);
                const auto x = (draw({N, 1, d}, gen) * 3 + 1).to(t.x);
                const auto r = draw({N, 1, d}, gen, t.x);
                const auto w = draw({d}, gen, t.w), b = draw({d}, gen, t.w);
                ASSERT_TRUE(add_layer_norm_cuda_supported(x, r, w, b));
                const auto [s, y] = add_layer_norm_cuda(x, r, w, b, 1e-5);
                const auto sum = x + r;
                EXPECT_TRUE(s.equal(sum));
                ASSERT_EQ(y.scalar_type(), t.x);
                const auto exact = at::layer_norm(sum.to(at::kDouble), {d}, w.to(at::kDouble),
                                                  b.to(at::kDouble), 1e-5);
                // ATen normalizes in the parameters' type: a bf16 stream with fp32 parameters
                // goes through fp32 and back, as the kernel does.
                const auto ref =
                    at::layer_norm(sum.to(t.w), {d}, w, b, 1e-5).to(t.x);
                const double e_mine = rel_err(y, exact), e_ref = rel_err(ref, exact);
                EXPECT_LE(e_mine, 2 * e_ref + 1e-6) << e_mine << " vs " << e_ref;
            }
        }
    }
}

// The dispatch takes the kernel only where it applies: with a gradient wanted, or fused dense
// kernels off, add_normalize is x + r and normalize(), with the same values.
TEST(CudaDense, AddNormalizeFallsBackWhereTheKernelDoesNotApply) {
    SKIP_WITHOUT_CUDA();
    auto gen = at::detail::createCPUGenerator(fresh_seed());
    torch::nn::LayerNorm layer(torch::nn::LayerNormOptions({256}));
    layer->to(at::kCUDA);
    const auto x = draw({5, 256}, gen), r = draw({5, 256}, gen);
    EXPECT_FALSE(add_layer_norm_cuda_supported(x, r, layer->weight, layer->bias));  // grad
    KernelOptions off;
    off.fused_dense = false;
    const auto [s_grad, y_grad] = add_normalize(layer, x, r);
    EXPECT_TRUE(y_grad.requires_grad());
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(add_layer_norm_cuda_supported(x, r, layer->weight, layer->bias));
    const auto [s_fused, y_fused] = add_normalize(layer, x, r);
    const auto [s_plain, y_plain] = add_normalize(layer, x, r, off);
    EXPECT_TRUE(s_fused.equal(s_plain));
    EXPECT_TRUE(s_grad.detach().equal(s_plain));
    EXPECT_LT(rel_err(y_fused, y_plain), 1e-5);
    EXPECT_LT(rel_err(y_grad.detach(), y_plain), 1e-5);
}

TEST(CudaDense, ColumnSumWithinTwiceTheAtenError) {
    SKIP_WITHOUT_CUDA();
    for (const auto& shape : {std::vector<int64_t>{1, 4}, {50, 768}, {50176, 256}, {999, 1540}}) {
        for (auto type : {at::kFloat, at::kBFloat16}) {
            const uint64_t seed = fresh_seed();
            SCOPED_TRACE(::testing::Message() << shape[0] << "x" << shape[1] << " " << type
                                              << " seed " << seed);
            auto gen = at::detail::createCPUGenerator(seed);
            const auto x = draw(shape, gen, type);
            const auto exact = x.to(at::kDouble).sum(0);
            const auto ref = x.to(at::kFloat).sum(0);
            const auto mine = column_sum_cuda(x);
            ASSERT_EQ(mine.scalar_type(), at::kFloat);
            EXPECT_LE(rel_err(mine, exact), 2 * rel_err(ref, exact) + 1e-6);
        }
    }
}

TEST(CudaDense, LinearMatchesAtenLinear) {
    SKIP_WITHOUT_CUDA();
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    auto gen = at::detail::createCPUGenerator(seed);
    const auto x = draw({4, 33, 64}, gen), w = draw({96, 64}, gen), b = draw({96}, gen);
    const auto g = draw({4, 33, 96}, gen);
    auto aten = [](const std::vector<at::Tensor>& t) { return at::linear(t[0], t[1], t[2]); };
    auto fused = [](const std::vector<at::Tensor>& t) { return linear_cuda(t[0], t[1], t[2]); };
    for (const bool autocast : {false, true}) {
        std::vector<at::Tensor> ref, mine;
        {
            CudaAutocast cast(autocast);
            ref = value_and_grads(aten, {x, w, b}, g);
            mine = value_and_grads(fused, {x, w, b}, g);
        }
        EXPECT_TRUE(mine[0].equal(ref[0])) << "autocast " << autocast;
        const double tol = autocast ? 2e-2 : 1e-5;
        for (size_t i = 1; i < ref.size(); ++i) {
            EXPECT_EQ(mine[i].scalar_type(), ref[i].scalar_type()) << i;
            EXPECT_LT(rel_err(mine[i], ref[i]), tol) << "autocast " << autocast << " grad " << i;
        }
    }
}

// A whole model on the GPU in fp32: the loss and every parameter's gradient with the fused dense
// and Krause kernels agree with the plain ATen path.
TEST(CudaDense, ModelGradientsMatchThePlainPath) {
    SKIP_WITHOUT_CUDA();
    ModelConfig config = test::tiny_config(AttentionKind::Krause, 8, 8, 1);
    config.d_model = 128;
    config.n_heads = 4;
    config.window = 16;
    config.top_k = 16;  // no selection: nothing can flip between the paths
    torch::manual_seed(fresh_seed());
    PixelTransformer model(config);
    model->to(at::kCUDA);
    const auto images = at::randint(0, 256, {3, config.seq_len()}, at::kLong).to(at::kCUDA);
    auto loss_and_grads = [&](bool fused) {
        KernelOptions kernels;
        kernels.fused_attention = kernels.fused_dense = fused;
        model->set_kernels(kernels);
        model->zero_grad();
        const auto loss = model->token_nll(images).mean();
        loss.backward();
        std::vector<std::pair<std::string, at::Tensor>> out{{"loss", loss.detach()}};
        for (const auto& p : model->named_parameters()) {
            out.emplace_back(p.key(), p.value().grad().clone());
        }
        return out;
    };
    const auto plain = loss_and_grads(false);
    const auto fused = loss_and_grads(true);
    ASSERT_EQ(plain.size(), fused.size());
    for (size_t i = 0; i < plain.size(); ++i) {
        EXPECT_LT(rel_err(fused[i].second, plain[i].second), 1e-4) << plain[i].first;
    }
}

#endif  // KRAUSE_WITH_CUDA

}  // namespace
}  // namespace krause
