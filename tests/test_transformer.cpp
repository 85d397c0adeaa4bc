// PixelTransformer: parameter counts, paper-shape forward passes, causality, decoding.
#include "model/transformer.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <torch/nn/module.h>

namespace krause {
namespace {

using test::max_abs_diff;
using test::tiny_config;

const AttentionKind kAllKinds[] = {AttentionKind::Krause, AttentionKind::Softmax,
                                   AttentionKind::Linear};

TEST(Transformer, ParameterCountsMatchThePaper) {
    PixelTransformer mnist(preset("mnist"));
    EXPECT_EQ(mnist->parameter_count(), 9809760 + 256);
    PixelTransformer cifar(preset("cifar10"));
    EXPECT_EQ(cifar->parameter_count(), 52274560 + 256);
    // The baselines lack only the per-head log_sigma.
    PixelTransformer softmax(preset("mnist", AttentionKind::Softmax));
    EXPECT_EQ(softmax->parameter_count(), 9809760 + 256 - 12 * 8);
}

void expect_near_uniform_forward(const ModelConfig& config) {
    torch::NoGradGuard no_grad;
    PixelTransformer model(config);
    model->eval();
    const int64_t T = config.seq_len();
    const auto nll = model->token_nll(at::randint(0, 256, {1, T}, at::kLong));
    ASSERT_EQ(nll.sizes(), (std::vector<int64_t>{1, T}));
    EXPECT_TRUE(nll.isfinite().all().item<bool>()) << to_string(config.attention);
    // An untrained model is close to uniform: about ln 256 nats per sub-pixel.
    EXPECT_NEAR(nll.mean().item<double>(), std::log(256.0), 1.0);
}

TEST(Transformer, EmbeddingInitStdSetsTheScaleOfBothEmbeddings) {
    for (double std : {0.02, 1.0}) {
        auto config = tiny_config(AttentionKind::Krause);
        config.embed_init_std = std;
        torch::manual_seed(5);
        PixelTransformer model(config);
        EXPECT_NEAR(model->tok_emb->weight.std().item<double>(), std, 0.1 * std);
        EXPECT_NEAR(model->pos_emb.std().item<double>(), std, 0.1 * std);
    }
}

// Embedding and MLP dropout act in training only: a model with them draws different outputs on
// each training forward, and in eval mode equals the same weights without them.
TEST(Transformer, EmbeddingAndMlpDropoutActOnlyInTraining) {
    for (int which = 0; which < 2; ++which) {
        auto plain = tiny_config(AttentionKind::Krause);
        plain.dropout = 0.0;
        auto dropped = plain;
        (which == 0 ? dropped.embed_dropout : dropped.mlp_dropout) = 0.5;
        PixelTransformer a(dropped), b(plain);
        {
            torch::NoGradGuard no_grad;
            auto dst = b->named_parameters();
            for (const auto& item : a->named_parameters()) dst[item.key()].copy_(item.value());
        }
        const auto tokens = at::randint(0, 256, {2, 30}, at::kLong);
        torch::NoGradGuard no_grad;
        a->train();
        EXPECT_GT(max_abs_diff(a->forward(tokens), a->forward(tokens)), 1e-3) << which;
        a->eval();
        b->eval();
        EXPECT_EQ(max_abs_diff(a->forward(tokens), b->forward(tokens)), 0.0) << which;
    }
}

TEST(Transformer, MnistPresetRunsAForwardPassOnCpu) {
    for (auto kind : kAllKinds) expect_near_uniform_forward(preset("mnist", kind));
}

TEST(Transformer, Cifar10PresetRunsAForwardPassOnCpu) {
    // Every parameter of the paper's CIFAR-10 shape takes part; a 400-token prefix (more than
    // one window of 256) keeps the CPU time of the suite reasonable.
    torch::NoGradGuard no_grad;
    PixelTransformer model(preset("cifar10", AttentionKind::Krause));
    model->eval();
    const auto logits = model->forward(at::randint(0, 256, {1, 400}, at::kLong));
    ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{1, 400, 256}));
    EXPECT_TRUE(logits.isfinite().all().item<bool>());
    const auto nll = -at::log_softmax(logits, -1).mean(-1);  // mean over targets: uniform-ish
    EXPECT_NEAR(nll.mean().item<double>(), std::log(256.0), 1.5);
}

TEST(Transformer, ChangingTokenJNeverChangesEarlierLogits) {
    torch::NoGradGuard no_grad;
    for (auto kind : kAllKinds) {
        PixelTransformer model(tiny_config(kind));
        model->eval();
        const int64_t S = model->config().seq_len() - 1;
        const auto tokens = at::randint(0, 256, {2, S}, at::kLong);
        const auto base = model->forward(tokens);
        for (int64_t j : {0L, 1L, 7L, 8L, 20L, S - 1}) {
            auto changed = tokens.clone();
            changed.select(1, j).add_(128).remainder_(256);
            const auto logits = model->forward(changed);
            if (j > 0) {
                EXPECT_LT(max_abs_diff(logits.narrow(1, 0, j), base.narrow(1, 0, j)), 1e-6)
                    << to_string(kind) << " j=" << j;
            }
            EXPECT_GT(max_abs_diff(logits.narrow(1, j, 1), base.narrow(1, j, 1)), 1e-4)
                << to_string(kind) << " j=" << j << ": the changed token must matter";
        }
    }
}

TEST(Transformer, IncrementalDecodingReproducesTheFullForward) {
    torch::NoGradGuard no_grad;
    for (auto kind : kAllKinds) {
        for (int64_t channels : {1, 3}) {
            // T = 36 or 48 > W = 8 so the Krause ring buffer wraps several times, K = 5 < W.
            PixelTransformer model(tiny_config(kind, channels == 1 ? 6 : 4,
                                               channels == 1 ? 6 : 4, channels));
            model->eval();
            const int64_t T = model->config().seq_len();
            const auto images = at::randint(0, 256, {3, T}, at::kLong);
            const auto full = model->forward(images.narrow(1, 0, T - 1));  // (3, T-1, 256)
            auto state = model->start_decode(3);
            for (int64_t p = 0; p < T - 1; ++p) {
                const auto step = model->decode_step(state, images.select(1, p));
                ASSERT_LT(max_abs_diff(step, full.select(1, p)), 1e-4)
                    << to_string(kind) << " channels " << channels << " position " << p;
            }
            EXPECT_THROW(model->decode_step(state, images.select(1, 0)), c10::Error);
        }
    }
}

TEST(Transformer, TokenNllCoversAllSubPixelsIncludingThePrior) {
    torch::NoGradGuard no_grad;
    PixelTransformer model(tiny_config(AttentionKind::Krause));
    model->eval();
    model->prior.zero_();
    model->prior[7] = 5.0;
    const int64_t T = model->config().seq_len();
    auto images = at::randint(0, 256, {2, T}, at::kLong);
    images[0][0] = 7;
    images[1][0] = 8;
    const auto nll = model->token_nll(images);
    const auto log_p = at::log_softmax(model->prior, 0);
    EXPECT_NEAR(nll[0][0].item<double>(), -log_p[7].item<double>(), 1e-5);
    EXPECT_NEAR(nll[1][0].item<double>(), -log_p[8].item<double>(), 1e-5);
    const auto logits = model->forward(images.narrow(1, 0, T - 1));
    const auto expect = -at::log_softmax(logits[1][4], 0)[images[1][5].item<int64_t>()];
    EXPECT_NEAR(nll[1][5].item<double>(), expect.item<double>(), 1e-5);
}

TEST(Transformer, GradientsReachEveryParameter) {
    PixelTransformer model(tiny_config(AttentionKind::Krause));
    const int64_t T = model->config().seq_len();
    model->token_nll(at::randint(0, 256, {2, T}, at::kLong)).mean().backward();
    for (const auto& p : model->named_parameters()) {
        ASSERT_TRUE(p.value().grad().defined()) << p.key();
        EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key();
    }
}

}  // namespace
}  // namespace krause
