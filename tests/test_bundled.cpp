// The bundled models: the registry matches the files, every model scores real test images within
// its bound and samples, the CLI picks them by name; the default MNIST model on the GPU path.
#include "model/checkpoint.h"
#include "model/sampler.h"
#include "test_util.h"
#include "data/dataset.h"
#include "training/bundled_models.h"
#include "training/engine.h"
#include "training/evaluate.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/cuda.h>

#include <cmath>
#include <cstdio>
#include <set>
#include <sys/wait.h>

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

TEST(BundledModel, RegistryDescribesTheFilesThatShip) {
    const auto all = bundled_registry();
    ASSERT_FALSE(all.empty()) << "assets/models/models.json lists no model";
    EXPECT_EQ(bundled_model_path(), all.front().path) << "the first entry is the default model";
    std::set<std::string> names;
    for (const auto& m : all) {
        SCOPED_TRACE(m.name);
        EXPECT_TRUE(names.insert(m.name).second) << "two models are called " << m.name;
        ASSERT_FALSE(m.path.empty()) << "assets/models/" << m.file << " is missing";
        const auto ck = load_checkpoint(m.path);
        const auto& c = ck.model->config();
        const auto shape = preset(m.preset, c.attention);
        EXPECT_EQ(to_string(c.attention), m.attention);
        EXPECT_EQ(c.seq_len(), shape.seq_len());
        EXPECT_EQ(c.image_channels, shape.image_channels);
        EXPECT_EQ(c.d_model, shape.d_model);
        EXPECT_EQ(c.n_heads, shape.n_heads);
        EXPECT_EQ(c.n_layers, shape.n_layers);
        if (c.attention == AttentionKind::Krause) {
            EXPECT_EQ(c.window, shape.window);
            EXPECT_EQ(c.top_k, shape.top_k);
        }
        EXPECT_EQ(m.parameters, ck.model->parameter_count());
        const auto data = ck.metadata.find("dataset");
        if (data != ck.metadata.end()) {  // KIND or KIND:DIR
            const auto kind = data->second.substr(0, data->second.find(':'));
            EXPECT_EQ(parse_dataset_kind(kind), parse_dataset_kind(m.data));
        }
        EXPECT_GT(m.bpd_predicted, 0);
        EXPECT_GT(m.bpd_bound, m.bpd_all) << "the bound is the measured figure plus a margin";
        EXPECT_GT(m.grid_seconds, 0);
        EXPECT_TRUE(m.grid_measured) << m.name << ": every shipped model's grid time is measured";
        EXPECT_GE(m.bound_images, 1);
    }
}

TEST(BundledModel, EveryModelScoresWithinItsBoundAndSamples) {
    const auto models = bundled_models();
    ASSERT_FALSE(models.empty());
    for (const auto& m : models) {
        SCOPED_TRACE(m.name);
        auto ck = load_checkpoint(m.path);
        SampleOptions options;
        options.count = 2;
        options.seed = 11;
        const auto s = sample(ck.model, options);
        EXPECT_EQ(s.filled, m.seq_len);
        EXPECT_GT(s.tokens.to(at::kFloat).std().item<double>(), 10.0) << "a blank sample";

        // Real data: $KRAUSE_DATA_DIR's folder of the kind (Fashion-MNIST also Debian's package).
        Dataset test_set;
        try {
            test_set = load_dataset(parse_dataset_spec(m.data), Split::Test, m.bound_images);
        } catch (const std::exception& e) {
            std::printf("%s: no real %s test images, not scored (%s)\n", m.name.c_str(),
                        m.data.c_str(), e.what());
            continue;
        }
        const auto r = evaluate_bpd(ck.model, images_tensor(test_set), 16);
        std::printf("%s: %.4f bits/dim over T on the first %lld test images (bound %.4f)\n",
                    m.name.c_str(), r.bpd_all, static_cast<long long>(r.images), m.bpd_bound);
        EXPECT_EQ(r.images, m.bound_images);
        EXPECT_LT(r.bpd_all, m.bpd_bound);
    }
}

struct CliRun {
    int code = -1;
    std::string out, err;
};

CliRun krause_cli(const std::string& args) {
    const test::TempDir tmp("bundled-cli");
    const std::string dir = tmp.path();
    const std::string cmd = "'" KRAUSE_CLI "' " + args + " >'" + dir + "/out' 2>'" + dir +
                            "/err' </dev/null";
    const int status = std::system(cmd.c_str());
    CliRun r;
    if (WIFEXITED(status)) r.code = WEXITSTATUS(status);
    r.out = test::read_file(dir + "/out");
    r.err = test::read_file(dir + "/err");
    return r;
}

TEST(BundledModel, CliPicksModelsByName) {
    auto r = krause_cli("sample --model no-such-model --out x.png");
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find("krause: error: --model: no bundled model 'no-such-model'"),
              std::string::npos) << r.err;
    EXPECT_NE(r.err.find(bundled_models().front().name), std::string::npos) << "names the choices";
    r = krause_cli("inspect --model mnist-krause --checkpoint m.safetensors --pixel 3,3");
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find("--checkpoint and --model both"), std::string::npos) << r.err;

    if (test::data_dir().empty()) GTEST_SKIP() << "KRAUSE_DATA_DIR not set: real MNIST is missing";
    for (const auto& m : bundled_models()) {
        if (m.data != "mnist") continue;
        // --data follows the model's data set when not given.
        r = krause_cli("eval --model " + m.name + " --limit 2 --device cpu --json");
        ASSERT_EQ(r.code, 0) << r.err;
        const auto j = nlohmann::json::parse(r.out);
        EXPECT_EQ(j["checkpoint"], m.path);
        EXPECT_EQ(j["data"], m.data);
        EXPECT_EQ(j["images"], 2);
    }
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
