// Token dynamics: the per-layer state measures on constructed states (collapse, separated groups,
// orthogonal states), the fast form against the plain reference, the residual stream, the
// particle projection, and `krause dynamics` end to end.
#include "model/dynamics.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/cuda.h>

#include <sys/wait.h>
#include <cstdlib>

namespace krause {
namespace {

using test::tiny_config;

const std::vector<double> kFractions = {0.25, 0.5, 0.75};

void expect_same(const StateMeasures& a, const StateMeasures& b) {
    EXPECT_NEAR(a.cosine, b.cosine, 1e-9);
    EXPECT_NEAR(a.consensus, b.consensus, 1e-9);
    EXPECT_NEAR(a.effective_rank, b.effective_rank, 1e-6 * b.effective_rank);
    EXPECT_NEAR(a.median_distance, b.median_distance, 1e-9 * b.median_distance);
    EXPECT_EQ(a.clusters, b.clusters);
}

TEST(Dynamics, IdenticalTokensAreOneConsensusPoint) {
    const auto x = at::randn({1, 16}, at::kDouble).expand({40, 16}).contiguous();
    for (const auto& m : {state_measures(x, kFractions), state_measures_reference(x, kFractions)}) {
        EXPECT_NEAR(m.cosine, 1.0, 1e-12);
        EXPECT_NEAR(m.consensus, 0.0, 1e-12);
        EXPECT_EQ(m.effective_rank, 1.0);
        EXPECT_EQ(m.median_distance, 0.0);
        EXPECT_EQ(m.clusters, std::vector<double>(3, 1.0));
    }
}

TEST(Dynamics, SeparatedGroupsGiveThatManyClusters) {
    // Tight groups (spread ~0.004) at the corners of a simplex (all ~141 apart): the median
    // distance is a between-group one, so every fraction in 0.25..0.75 of it joins each group
    // and keeps the groups apart.
    for (int64_t groups : {2, 3, 5}) {
        const auto centres = at::eye(groups, 8, at::kDouble) * 100;
        const auto x =
            centres.repeat_interleave(12, 0) + 0.001 * at::randn({groups * 12, 8}, at::kDouble);
        const auto fast = state_measures(x, kFractions);
        EXPECT_EQ(fast.clusters, std::vector<double>(3, static_cast<double>(groups)));
        expect_same(fast, state_measures_reference(x, kFractions));
    }
}

TEST(Dynamics, OrthogonalStatesHaveFullRank) {
    // T orthonormal rows: their centred set spans T - 1 directions with equal singular values.
    const auto q = std::get<0>(at::linalg_qr(at::randn({24, 10}, at::kDouble))).t().contiguous();
    EXPECT_NEAR(state_measures(q, kFractions).effective_rank, 9.0, 1e-9);
    // The reference squares the states (Gram eigenvalues), so its zero singular values come out
    // near sqrt(1e-16) rather than 1e-16, which moves the entropy by ~1e-7.
    EXPECT_NEAR(state_measures_reference(q, kFractions).effective_rank, 9.0, 1e-5);
    EXPECT_NEAR(state_measures(q, kFractions).cosine, 0.0, 1e-12);
    // +-e_i for every axis: mean 0, and the full d dimensions used equally.
    const auto eye = at::eye(7, at::kDouble);
    const auto pm = at::cat({eye, -eye}) * 3.0;
    const auto m = state_measures(pm, kFractions);
    EXPECT_NEAR(m.effective_rank, 7.0, 1e-9);
    EXPECT_NEAR(m.consensus, 1.0, 1e-12);
    // All pairs but the opposite ones are at 3 sqrt 2; no fraction below 1 joins anything.
    EXPECT_EQ(m.clusters, std::vector<double>(3, 14.0));
}

TEST(Dynamics, FastFormEqualsReferenceOnRandomStates) {
    for (int trial = 0; trial < 4; ++trial) {
        const int64_t T = 20 + 13 * trial, d = 6 + 5 * trial;
        // Anisotropic, shifted states, so that cosine, rank and clusters are all non-trivial.
        auto x = at::randn({T, d}, at::kFloat) * at::rand({1, d}) * 3 + at::randn({1, d});
        expect_same(state_measures(x, {0.1, 0.3, 0.5, 1.0}),
                    state_measures_reference(x, {0.1, 0.3, 0.5, 1.0}));
    }
}

// The measures read their results on the host: states on a GPU give the CPU's figures.
TEST(Dynamics, MeasuresOfGpuStatesEqualThoseOnTheCpu) {
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no GPU visible to LibTorch";
    for (int trial = 0; trial < 3; ++trial) {
        const int64_t T = 30 + 17 * trial, d = 8 + 4 * trial;
        const auto x = at::randn({T, d}, at::kFloat) * at::rand({1, d}) * 2 + at::randn({1, d});
        expect_same(state_measures(x.to(at::kCUDA), kFractions), state_measures(x, kFractions));
    }
}

TEST(Dynamics, ComponentsOfAChainAndOfSeparatePoints) {
    // A chain 0-1-2-...-9 at unit spacing, listed in scrambled order.
    const auto pos = at::randperm(10, at::kLong).to(at::kDouble).view({10, 1});
    const auto dist = at::cdist(pos, pos);
    EXPECT_EQ(count_components(dist, 1.0), 1);
    EXPECT_EQ(count_components(dist, 0.5), 10);
    const auto two = at::cat({pos, pos + 100.0});
    EXPECT_EQ(count_components(at::cdist(two, two), 1.0), 2);
}

TEST(Dynamics, ResidualStreamEndsInTheForwardPass) {
    for (auto kind : {AttentionKind::Krause, AttentionKind::Softmax}) {
        PixelTransformer model(tiny_config(kind));
        model->eval();
        torch::NoGradGuard no_grad;
        const auto tokens = at::randint(0, 256, {2, 35}, at::kLong);
        const auto states = residual_stream(model, tokens);
        ASSERT_EQ(states.size(), 3u);
        EXPECT_EQ(states[0].sizes(), (std::vector<int64_t>{2, 35, 32}));
        const auto logits = model->head->forward(model->ln_f->forward(states.back()));
        EXPECT_LT(test::max_abs_diff(logits, model->forward(tokens)), 1e-5);
    }
}

TEST(Dynamics, ModelMeasuresAverageThePerImageMeasures) {
    PixelTransformer model(tiny_config(AttentionKind::Krause));
    const auto images = at::randint(0, 256, {3, 36}, at::kLong);
    DynamicsOptions options;
    options.batch_size = 2;
    int64_t calls = 0;
    options.progress = [&](int64_t done, int64_t total) {
        ++calls;
        EXPECT_EQ(total, 3);
        EXPECT_LE(done, 3);
    };
    const auto all = token_dynamics(model, images, options);
    EXPECT_EQ(calls, 2);
    EXPECT_EQ(all.images, 3);
    ASSERT_EQ(all.states.size(), 3u);
    ASSERT_EQ(all.attention.size(), 2u);
    double cosine = 0;
    for (int64_t i = 0; i < 3; ++i) {
        cosine += token_dynamics(model, images.narrow(0, i, 1)).states[1].cosine / 3;
    }
    EXPECT_NEAR(all.states[1].cosine, cosine, 1e-6);
    EXPECT_GT(all.attention[1].max_weight, 0);
    EXPECT_TRUE(model->is_training());
}

TEST(Dynamics, ParticlesShareOneProjectionAcrossLayers) {
    PixelTransformer model(tiny_config(AttentionKind::Softmax));
    const auto image = at::randint(0, 256, {36}, at::kLong);
    const auto p = project_particles(model, image);
    EXPECT_EQ(p.layers, 3);
    EXPECT_EQ(p.tokens, 35);
    ASSERT_EQ(p.xy.size(), 3u * 35 * 2);
    EXPECT_EQ(p.inputs[4], image[4].item<int64_t>());
    EXPECT_GT(p.explained, 0.0);
    EXPECT_LE(p.explained, 1.0 + 1e-9);
    // One projection for all layers: the points of all layers together have mean zero.
    double sx = 0, sy = 0;
    for (int64_t l = 0; l < 3; ++l) {
        for (int64_t t = 0; t < 35; ++t) {
            sx += p.x(l, t);
            sy += p.y(l, t);
        }
    }
    EXPECT_NEAR(sx / 105, 0.0, 1e-4);
    EXPECT_NEAR(sy / 105, 0.0, 1e-4);
    EXPECT_EQ(project_particles(model, image).xy, p.xy);
}

int run_cli(const std::string& args, const std::string& dir, std::string* out) {
    const std::string cmd = "cd '" + dir + "' && '" KRAUSE_CLI "' " + args + " >'" + dir +
                            "/out.txt' 2>'" + dir + "/err.txt' </dev/null";
    const int status = std::system(cmd.c_str());
    *out = test::read_file(dir + "/out.txt") + test::read_file(dir + "/err.txt");
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(DynamicsCli, TableJsonCompareAndErrors) {
    const test::TempDir tmp("dynamics-cli");
    const std::string dir = tmp.path();
    const auto data_tmp = test::fake_mnist_dir(8, 6);
    const std::string data = data_tmp.path();
    std::string out;
    ASSERT_EQ(run_cli("init --preset mnist-tiny --out k.safetensors", dir, &out), 0) << out;
    ASSERT_EQ(
        run_cli("init --preset mnist-tiny --attention softmax --out s.safetensors", dir, &out), 0)
        << out;
    ASSERT_EQ(run_cli("dynamics --checkpoint k.safetensors --data mnist:" + data +
                          " --images 3 --json --device cpu",
                      dir, &out),
              0)
        << out;
    const auto j = nlohmann::json::parse(test::read_file(dir + "/out.txt"));
    EXPECT_EQ(j["models"][0]["images"], 3);
    EXPECT_EQ(j["models"][0]["layers"].size(), 3u);
    EXPECT_EQ(j["eps_fractions"].size(), 3u);
    EXPECT_GT(j["models"][0]["layers"][2]["cosine"].get<double>(), -1.0);
    EXPECT_TRUE(j["models"][0]["layers"][0]["attention"].is_null());
    EXPECT_GT(j["models"][0]["layers"][1]["attention"]["max_weight"].get<double>(), 0.0);

    ASSERT_EQ(run_cli("dynamics --checkpoint k.safetensors --compare s.safetensors --data mnist:" +
                          data + " --image 5 --device cpu",
                      dir, &out),
              0)
        << out;
    EXPECT_NE(out.find("softmax"), std::string::npos) << out;
    EXPECT_NE(out.find("cosine"), std::string::npos) << out;

    EXPECT_EQ(run_cli("dynamics --checkpoint k.safetensors --data mnist:" + data + " --image 6",
                      dir, &out),
              2);
    EXPECT_NE(out.find("krause: error: --image 6"), std::string::npos) << out;
    ASSERT_EQ(run_cli("dynamics --checkpoint k.safetensors --data mnist:" + data +
                          " --first 4 --images 5 --json --device cpu",
                      dir, &out),
              0)
        << out;
    const auto tail = nlohmann::json::parse(test::read_file(dir + "/out.txt"));
    EXPECT_EQ(tail["first_image"], 4);
    EXPECT_EQ(tail["models"][0]["images"], 2);  // only images 4 and 5 exist
    EXPECT_EQ(run_cli("dynamics --checkpoint k.safetensors --data mnist:" + data + " --first 6",
                      dir, &out),
              2);
    EXPECT_NE(out.find("--first 6 is beyond"), std::string::npos) << out;
    EXPECT_EQ(run_cli("dynamics --checkpoint missing.safetensors --data mnist:" + data, dir, &out),
              2);
    EXPECT_NE(out.find("no such checkpoint"), std::string::npos) << out;
}

}  // namespace
}  // namespace krause
