// The bundled MNIST model: it loads, scores real test images well, and samples.
#include "model/checkpoint.h"
#include "model/sampler.h"
#include "test_util.h"
#include "data/dataset.h"
#include "training/engine.h"
#include "training/evaluate.h"

#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <cmath>
#include <cstdio>

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

// Bits per predicted sub-pixel (T - 1 per image) of `images` (N, T) under teacher-forced decoding
// with the position on the device, the path of GPU sampling; fp8_rings as in start_decode.
double decode_bpd(PixelTransformer& model, const at::Tensor& images, bool fp8_rings) {
    torch::NoGradGuard no_grad;
    const int64_t n = images.size(0), T = images.size(1);
    auto state = model->start_decode(n, fp8_rings);
    auto position = at::zeros({1}, images.options());
    auto nll = at::zeros({}, images.options().dtype(at::kDouble));
    for (int64_t p = 0; p + 1 < T; ++p) {
        const auto logits = model->decode_step_at(state, images.select(1, p), position);
        nll += at::cross_entropy_loss(logits.to(at::kFloat), images.select(1, p + 1),
                                      /*weight=*/{}, at::Reduction::Sum)
                   .to(at::kDouble);
        position.add_(1);
    }
    return nll.item<double>() / static_cast<double>(n * (T - 1)) / std::log(2.0);
}

// What sampling with fp8 ring buffers costs, measured on real digits: the likelihood the GPU
// decoding path assigns to test images with bf16 and with fp8 rings.
TEST(BundledModel, Fp8RingsCostLittleLikelihoodOnRealDigits) {
#ifndef KRAUSE_WITH_CUDA
    GTEST_SKIP() << "built without the CUDA kernels";
#else
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no GPU visible to LibTorch";
    const auto data = test::data_dir();
    if (data.empty()) GTEST_SKIP() << "KRAUSE_DATA_DIR not set: real MNIST is not available";
    auto ck = load_checkpoint(bundled_model_path());
    auto model = copy_model(ck.model, at::kCUDA, at::kBFloat16);
    model->eval();
    const auto test_set = load_dataset(parse_dataset_spec("mnist:" + data + "/mnist"),
                                       Split::Test, 200);
    const auto images = images_tensor(test_set).to(at::kCUDA).to(at::kLong);
    const double bf16 = decode_bpd(model, images, false), fp8 = decode_bpd(model, images, true);
    std::printf("bundled model, GPU decoding of 200 test images: %.4f bits/dim over T-1 with "
                "bf16 rings, %.4f with fp8 rings\n",
                bf16, fp8);
    EXPECT_LT(bf16, kBundledBound);
    EXPECT_NE(fp8, bf16);  // the fp8 rings are in use
    EXPECT_LT(fp8 - bf16, 0.01);
#endif
}

}  // namespace
}  // namespace krause
