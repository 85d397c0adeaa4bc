// The fused forward's top-K threshold search (model/cuda/threshold.h) run on the host with plain
// counts, against a sort: the scores of random windows like the bench's, windows full of ties,
// and clusters that defeat interpolation.
#include "model/cuda/threshold.h"

#include "data/dataset.h"
#include "model/attention.h"
#include "model/checkpoint.h"
#include "training/bundled_models.h"
#include "training/evaluate.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

namespace krause {
namespace {

int count_at_least(const std::vector<unsigned>& keys, unsigned c) {
    return static_cast<int>(
        std::count_if(keys.begin(), keys.end(), [&](unsigned u) { return u >= c; }));
}

// Checks the search on one window's scores against the K-th largest key from a sort; returns
// the counts it made.
int check_window(const std::vector<float>& scores, int k, const std::string& what) {
    SCOPED_TRACE(what + ", K = " + std::to_string(k));
    std::vector<unsigned> keys;
    for (float s : scores) keys.push_back(order_key(s));
    std::vector<unsigned> sorted = keys;
    std::sort(sorted.begin(), sorted.end(), std::greater<unsigned>());
    const unsigned kth = sorted[k - 1];
    const int n = static_cast<int>(keys.size());
    const auto lo = sorted.back(), hi = sorted.front();
    EXPECT_LT(lo, hi) << "the search is for windows of at least two distinct keys";
    int made = 0;
    const KthKey found = kth_largest_key(lo, hi, n, k, [&](unsigned c) {
        ++made;
        return count_at_least(keys, c);
    });
    EXPECT_EQ(found.counts, made);
    EXPECT_EQ(found.at_least, count_at_least(keys, found.t));
    if (found.at_least == k) {
        // Exactly the K largest keys lie at or above t.
        EXPECT_GT(found.t, k < n ? sorted[k] : 0u);
        EXPECT_LE(found.t, kth);
    } else {
        // No threshold isolates K keys: t is the tied K-th largest key itself.
        EXPECT_EQ(found.t, kth);
        EXPECT_GT(found.at_least, k);
    }
    EXPECT_LE(found.counts, kInterpolationSteps + 33);
    return found.counts;
}

// Scores -||q - k||^2 / (2 sigma^2) of one query against W keys, all entries N(0, 1).
std::vector<float> window_scores(std::mt19937& gen, int W, int D, float sigma) {
    std::normal_distribution<float> normal;
    std::vector<float> q(D), scores(W);
    for (auto& x : q) x = normal(gen);
    for (auto& s : scores) {
        float d2 = 0;
        for (int d = 0; d < D; ++d) {
            const float diff = q[d] - normal(gen);
            d2 += diff * diff;
        }
        s = -d2 / (2 * sigma * sigma);
    }
    return scores;
}

TEST(KthLargestKey, RandomWindowsMatchASortInAboutFiveCounts) {
    std::mt19937 gen(std::random_device{}());
    for (const auto& [W, D, K] : {std::tuple{256, 64, 192}, std::tuple{128, 32, 96},
                                  std::tuple{100, 16, 1}, std::tuple{37, 8, 36}}) {
        int counts = 0;
        const int rows = 300;
        for (int r = 0; r < rows; ++r) {
            counts += check_window(window_scores(gen, W, D, 2.5f), K, "W " + std::to_string(W));
        }
        // Measured about 5 counts a row at the bench's shapes; the bisection of the key bits took
        // about 15.
        if (K > 1 && K < W - 1) EXPECT_LT(counts, 8 * rows) << "W " << W;
    }
}

TEST(KthLargestKey, TiesAtTheKthPlaceReturnThatKey) {
    std::mt19937 gen(std::random_device{}());
    std::uniform_int_distribution<int> small(-3, 0);
    for (int trial = 0; trial < 200; ++trial) {
        std::vector<float> scores(64);
        for (auto& s : scores) s = static_cast<float>(small(gen));
        if (std::all_of(scores.begin(), scores.end(), [&](float s) { return s == scores[0]; })) {
            scores[0] = -4;
        }
        for (int k : {1, 5, 32, 63}) check_window(scores, k, "integer scores");
    }
    // The largest score alone reaches K.
    std::vector<float> top(40, -1.0f);
    for (int i = 0; i < 10; ++i) top[i] = 0.0f;
    for (int k : {1, 3, 10}) check_window(top, k, "ties at the maximum");
    check_window(top, 11, "ties below the maximum");
    // ... where the next key is its neighbour, so that only the largest key isolates K.
    std::vector<float> adjacent(40, std::nextafter(1.0f, 0.0f));
    for (int i = 0; i < 10; ++i) adjacent[i] = 1.0f;
    for (int k : {1, 9, 10, 11}) check_window(adjacent, k, "a tied maximum and its neighbour");
}

TEST(KthLargestKey, ClustersThatDefeatInterpolationEndWithinTheBound) {
    // K - 1 keys packed just below the maximum, the rest spread over many orders of magnitude:
    // each interpolation lands next to the low end, then the halving takes over.
    for (int extra = 0; extra < 3; ++extra) {
        std::vector<float> scores(256);
        for (int j = 0; j < 256; ++j) {
            scores[j] = j < 191 + extra ? -1.0f - 1e-6f * static_cast<float>(j)
                                        : -1e6f * static_cast<float>(1 + j + extra);
        }
        check_window(scores, 192, "clusters");
    }
    // Neighbouring keys and the extremes of the fp32 range.
    check_window({-INFINITY, 3e38f, -3e38f, 0.0f, -0.0f, 1e-45f}, 2, "extremes");
    const float x = 1.0f;
    check_window({x, std::nextafter(x, 2.0f), std::nextafter(x, 0.0f)}, 2, "neighbours");
}

// The windows of the bundled MNIST model on real digits, every layer: the scores of a trained
// model are spread far less evenly than random ones. Measured 4.2-4.9 counts a window on average
// per layer (the bisection of the key bits took 7.8-10.1).
TEST(KthLargestKey, TrainedModelWindowsMatchASortInFewCounts) {
    const char* root = std::getenv("KRAUSE_DATA_DIR");
    if (root == nullptr || *root == '\0') {
        GTEST_SKIP() << "set KRAUSE_DATA_DIR to a folder holding mnist/";
    }
    auto ck = load_checkpoint(bundled_model_path());
    const ModelConfig& mc = ck.model->config();
    const auto images = images_tensor(load_dataset(
        DatasetSpec{DatasetKind::Mnist, std::string(root) + "/mnist"}, Split::Test, 1));
    const auto tokens = images.narrow(1, 0, mc.seq_len() - 1).to(at::kLong);
    const auto qk = ck.model->capture_queries_keys(tokens);
    const int64_t W = mc.window, K = mc.top_k, T = tokens.size(1);
    ASSERT_GT(W, K);
    for (size_t l = 0; l < qk.size(); ++l) {
        const auto& [q, k] = qk[l];
        const auto log_sigma = ck.model->blocks[l]->as<BlockImpl>()->attn->log_sigma;
        int counts = 0, rows = 0;
        for (int64_t h = 0; h < q.size(1); ++h) {
            for (int64_t i = W - 1; i < T; i += 5) {
                const auto s = krause_scores(q.select(1, h).narrow(1, i, 1).unsqueeze(1),
                                             k.select(1, h).narrow(1, i - W + 1, W).unsqueeze(1),
                                             log_sigma.narrow(0, h, 1))
                                   .reshape({W})
                                   .contiguous();
                const std::vector<float> scores(s.data_ptr<float>(), s.data_ptr<float>() + W);
                const auto same = [&](float x) { return x == scores[0]; };
                if (std::all_of(scores.begin(), scores.end(), same)) continue;  // nothing to search
                counts += check_window(scores, static_cast<int>(K), "layer " + std::to_string(l));
                ++rows;
            }
        }
        ASSERT_GT(rows, 100);
        EXPECT_LT(counts, 6 * rows) << "layer " << l << ": " << double(counts) / rows
                                    << " counts a window";
    }
}

}  // namespace
}  // namespace krause
