// The bundled MNIST model: it loads, scores real test images well, and samples.
#include "model/checkpoint.h"
#include "model/sampler.h"
#include "test_util.h"
#include "training/dataset.h"
#include "training/engine.h"
#include "training/evaluate.h"

#include <gtest/gtest.h>

namespace krause {
namespace {

// Measured: 0.7320 bits/dim over all T sub-pixels on the first 200 MNIST test images (CPU).
constexpr double kBundledBound = 0.80;

TEST(BundledModel, ScoresRealMnistWellAndSamples) {
    const auto path = bundled_model_path();
    ASSERT_FALSE(path.empty()) << "assets/models/mnist-krause.safetensors is missing";
    auto ck = load_checkpoint(path);
    EXPECT_EQ(ck.model->config().attention, AttentionKind::Krause);

    SampleOptions options;
    options.count = 2;
    options.seed = 5;
    const auto s = sample(ck.model, options);
    EXPECT_EQ(s.filled, 784);
    // Digits are mostly background: a trained model draws mostly dark sub-pixels.
    EXPECT_GT(s.tokens.lt(64).sum().item<int64_t>(), 2 * 784 / 2);

    const auto data = test::data_dir();
    if (data.empty()) GTEST_SKIP() << "KRAUSE_DATA_DIR not set: real MNIST is not available";
    const auto test_set = load_dataset(parse_dataset_spec("mnist:" + data + "/mnist"),
                                       Split::Test, 200);
    const auto r = evaluate_bpd(ck.model, images_tensor(test_set), 50);
    EXPECT_EQ(r.images, 200);
    std::printf("bundled model: %.4f bits/dim over T, %.4f over T-1 (200 test images)\n",
                r.bpd_all, r.bpd_predicted);
    EXPECT_LT(r.bpd_all, kBundledBound);
}

}  // namespace
}  // namespace krause
