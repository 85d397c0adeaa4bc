// Sampling (seeds, prompts, callbacks, stop) and attention probes (weights and measures).
#include "model/probe.h"
#include "model/sampler.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <atomic>

namespace krause {
namespace {

using test::tiny_config;

TEST(Sampler, SameSeedSameImagesOtherSeedOtherImages) {
    PixelTransformer model(tiny_config(AttentionKind::Krause));
    SampleOptions options;
    options.count = 4;
    options.seed = 42;
    const auto a = sample(model, options);
    const auto b = sample(model, options);
    EXPECT_TRUE(at::equal(a.tokens, b.tokens));
    EXPECT_EQ(a.filled, model->config().seq_len());
    EXPECT_FALSE(a.stopped);
    options.seed = 43;
    EXPECT_FALSE(at::equal(sample(model, options).tokens, a.tokens));
}

TEST(Sampler, PrefixIsKeptVerbatimAndCallbackSeesEveryToken) {
    for (auto kind : {AttentionKind::Krause, AttentionKind::Softmax, AttentionKind::Linear}) {
        PixelTransformer model(tiny_config(kind));
        const int64_t T = model->config().seq_len();
        SampleOptions options;
        options.count = 3;
        options.prefix = at::randint(0, 256, {3, 14}, at::kLong);
        int64_t calls = 0, last = 0;
        options.on_token = [&](int64_t filled, const at::Tensor& tokens) {
            ++calls;
            EXPECT_EQ(filled, last + 1);
            EXPECT_EQ(tokens.sizes(), (std::vector<int64_t>{3, T}));
            last = filled;
        };
        const auto result = sample(model, options);
        EXPECT_EQ(calls, T);
        EXPECT_TRUE(at::equal(result.tokens.narrow(1, 0, 14).to(at::kLong), options.prefix));
    }
}

TEST(Sampler, StopFlagEndsSamplingBetweenTokens) {
    PixelTransformer model(tiny_config(AttentionKind::Krause));
    std::atomic<bool> stop{false};
    SampleOptions options;
    options.count = 2;
    options.stop = &stop;
    options.on_token = [&](int64_t filled, const at::Tensor&) {
        if (filled == 5) stop = true;
    };
    const auto result = sample(model, options);
    EXPECT_TRUE(result.stopped);
    EXPECT_EQ(result.filled, 5);
}

TEST(Sampler, RejectsBadOptions) {
    PixelTransformer model(tiny_config(AttentionKind::Krause));
    SampleOptions options;
    options.temperature = 0.0;
    EXPECT_THROW(sample(model, options), std::invalid_argument);
    options.temperature = 1.0;
    options.prefix = at::full({3}, 300, at::kLong);
    EXPECT_THROW(sample(model, options), std::invalid_argument);
}

TEST(Sampler, CategoricalFollowsTheCumulativeDistribution) {
    const auto probs = at::tensor({0.0, 0.25, 0.0, 0.75}, at::kDouble).view({1, 4}).expand({5, 4});
    const auto u = at::tensor({0.0, 0.1, 0.2499, 0.2501, 0.9999}, at::kDouble);
    const auto picked = sample_categorical(probs, u);
    const std::vector<int64_t> expect = {1, 1, 1, 3, 3};
    for (int i = 0; i < 5; ++i) EXPECT_EQ(picked[i].item<int64_t>(), expect[i]) << i;
}

TEST(Probe, WeightsAreDistributionsOverAtMostKKeysInsideTheWindow) {
    for (auto kind : {AttentionKind::Krause, AttentionKind::Softmax, AttentionKind::Linear}) {
        PixelTransformer model(tiny_config(kind));
        const auto& c = model->config();
        const auto image = at::randint(0, 256, {c.seq_len()}, at::kLong);
        const std::vector<int64_t> queries = {0, 3, 7, 8, 20, c.seq_len() - 2};
        const auto r = probe_attention(model, image, queries);
        ASSERT_EQ(r.queries.size(), queries.size());
        ASSERT_EQ(r.over_image.size(), static_cast<size_t>(c.n_layers));
        for (const auto& pq : r.queries) {
            for (int64_t l = 0; l < c.n_layers; ++l) {
                for (int64_t h = 0; h < c.n_heads; ++h) {
                    const auto& w = pq.weights[l][h];
                    ASSERT_EQ(static_cast<int64_t>(w.size()), pq.position + 1);
                    double sum = 0;
                    int64_t nonzero = 0;
                    for (int64_t j = 0; j <= pq.position; ++j) {
                        sum += w[j];
                        if (w[j] != 0.0f) {
                            ++nonzero;
                            if (kind == AttentionKind::Krause) {
                                EXPECT_GT(j, pq.position - c.window) << "outside the window";
                            }
                        }
                    }
                    EXPECT_NEAR(sum, 1.0, kind == AttentionKind::Linear ? 1e-4 : 1e-5);
                    const auto& sel = pq.selected[l][h];
                    if (kind == AttentionKind::Krause) {
                        EXPECT_LE(nonzero, c.top_k);
                        EXPECT_EQ(static_cast<int64_t>(sel.size()),
                                  std::min<int64_t>({c.top_k, c.window, pq.position + 1}));
                        for (int32_t j : sel) EXPECT_GT(j, pq.position - c.window);
                    } else {
                        EXPECT_EQ(static_cast<int64_t>(sel.size()), pq.position + 1);
                    }
                }
            }
        }
        for (const auto& m : r.over_image) {
            EXPECT_GE(m.sink_mass, 0.0);
            EXPECT_LE(m.sink_mass, 1.0);
            EXPECT_GE(m.max_weight + 1e-6, std::max(m.sink_mass, m.oldest_key));
            EXPECT_LE(m.max_weight, 1.0 + 1e-6);
            EXPECT_GE(m.keys_for_90, 1.0);
            EXPECT_GE(m.entropy, 0.0);
        }
    }
}

TEST(Probe, MeasuresOfAKnownDistribution) {
    // Krause with W = 1: every query attends only to itself, so for p >= 1 the sink mass is 0,
    // the oldest key (itself) holds everything, entropy is 0 and one key holds 90%.
    auto c = tiny_config(AttentionKind::Krause);
    c.window = 1;
    c.top_k = 1;
    PixelTransformer model(c);
    const auto images = at::randint(0, 256, {2, c.seq_len()}, at::kLong);
    for (const auto& m : attention_measures(model, images)) {
        EXPECT_NEAR(m.sink_mass, 0.0, 1e-7);
        EXPECT_NEAR(m.oldest_key, 1.0, 1e-6);
        EXPECT_NEAR(m.max_weight, 1.0, 1e-6);
        EXPECT_NEAR(m.entropy, 0.0, 1e-6);
        EXPECT_NEAR(m.keys_for_90, 1.0, 1e-9);
    }
}

}  // namespace
}  // namespace krause
