// The band of the windows (model/cuda/band.h), by which the tensor-core backward skips the
// 16 x 16 steps that hold no live pair, replayed on the host against every pair of a window: query
// tiles of 64 rows (the query pass) and key tiles of 64 rows (the key pass), each streaming a span
// of whole 64-row chunks, over the kernel tests' shapes, the presets' and random ones.
#include "model/cuda/band.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <utility>
#include <vector>

namespace krause::fused {
namespace {

constexpr int kChunk = 64;  // rows of a streamed chunk

// The span a tile of 64 rows streams: the 64 + W - 1 rows that can pair, in whole chunks.
int span_rows(int W) { return (kChunk + W - 1 + kChunk - 1) / kChunk * kChunk; }

struct Tally {
    long kept = 0, skipped = 0;
    double skipped_share() const { return static_cast<double>(skipped) / (kept + skipped); }
};

// Query tiles of 64 queries (i0, i0 + 64, ...): every key j of the window of a live query i
// (max(0, i - W + 1) <= j <= i < T) lies in a step that query_step_live keeps.
Tally replay_query_tiles(int T, int W) {
    const int n_cols = span_rows(W);
    Tally tally;
    for (int i0 = 0; i0 < T; i0 += kChunk) {
        const int key0 = i0 - W + 1;  // the key of span row 0
        for (int m0 = 0; m0 < kChunk; m0 += 16) {
            for (int n0 = 0; n0 < n_cols; n0 += 16) {
                (query_step_live(i0, m0, n0, W, T) ? tally.kept : tally.skipped) += 1;
            }
            for (int i = i0 + m0; i < std::min(i0 + m0 + 16, T); ++i) {
                for (int j = std::max(0, i - W + 1); j <= i; ++j) {
                    const int x = j - key0;
                    EXPECT_LT(x, n_cols);
                    if (!query_step_live(i0, m0, x / 16 * 16, W, T)) {
                        ADD_FAILURE() << "T " << T << " W " << W << ": query " << i << ", key "
                                      << j << " skipped";
                        return tally;
                    }
                }
            }
        }
    }
    return tally;
}

// Key tiles of 64 keys (j0, j0 + 64, ...) over their chunks of queries up to T: every live query
// i of whose window a key j < T is (j <= i <= j + W - 1, i < T) lies in a step key_step_live keeps.
Tally replay_key_tiles(int T, int W) {
    const int n_cols = span_rows(W);
    Tally tally;
    for (int j0 = 0; j0 < T; j0 += kChunk) {
        const int n_chunks = std::min(n_cols / kChunk, (T - j0 + kChunk - 1) / kChunk);
        for (int m0 = 0; m0 < kChunk; m0 += 16) {
            for (int n0 = 0; n0 < n_chunks * kChunk; n0 += 16) {
                (key_step_live(j0, m0, n0, W, T) ? tally.kept : tally.skipped) += 1;
            }
            for (int j = j0 + m0; j < std::min(j0 + m0 + 16, T); ++j) {
                for (int i = j; i <= std::min(j + W - 1, T - 1); ++i) {
                    const int y = i - j0;
                    EXPECT_LT(y, n_chunks * kChunk);
                    if (!key_step_live(j0, m0, y / 16 * 16, W, T)) {
                        ADD_FAILURE() << "T " << T << " W " << W << ": key " << j << ", query "
                                      << i << " skipped";
                        return tally;
                    }
                }
            }
        }
    }
    return tally;
}

TEST(Band, EveryPairOfAWindowLiesInAStepKept) {
    // (T, W): the kernel tests' shapes, then random ones.
    std::vector<std::pair<int, int>> shapes = {{5, 8},     {37, 8},    {100, 6},   {90, 5},
                                               {70, 1},    {150, 40},  {130, 33},  {200, 300},
                                               {1, 4},     {320, 300}, {1600, 1500}, {784, 128},
                                               {3072, 256}, {300, 128}};
    std::mt19937 gen(20261206);
    for (int n = 0; n < 150; ++n) {
        shapes.emplace_back(std::uniform_int_distribution<int>(1, 700)(gen),
                            std::uniform_int_distribution<int>(1, 256)(gen));
    }
    for (const auto& [T, W] : shapes) {
        replay_query_tiles(T, W);
        replay_key_tiles(T, W);
        if (HasFailure()) return;
    }
}

// What the skipping saves at the presets' shapes (and that it skips at all): the shares of the
// steps each pass leaves out, as the kernel notes give them.
TEST(Band, StepsSkippedAtThePresetsShapes) {
    EXPECT_NEAR(replay_query_tiles(784, 128).skipped_share(), 0.338, 0.001);
    EXPECT_NEAR(replay_key_tiles(784, 128).skipped_share(), 0.297, 0.001);
    EXPECT_NEAR(replay_query_tiles(3072, 256).skipped_share(), 0.181, 0.001);
    EXPECT_NEAR(replay_key_tiles(3072, 256).skipped_share(), 0.150, 0.001);
}

}  // namespace
}  // namespace krause::fused
