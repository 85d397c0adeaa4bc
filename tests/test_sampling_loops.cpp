// The replayable decode loops against the host-position reference: decode_step_at against
// decode_step, the Device loop's images against the Host loop's, and on a GPU the captured
// CUDA graph against the same step launched op by op.
#include "model/sampler.h"
#include "test_util.h"

#ifdef KRAUSE_WITH_CUDA
#include "model/krause_attention_cuda.h"

#include <ATen/cuda/CUDAContext.h>
#endif

#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <algorithm>
#include <atomic>
#include <random>
#include <vector>

namespace krause {
namespace {

using test::tiny_config;

const AttentionKind kKinds[] = {AttentionKind::Krause, AttentionKind::Softmax,
                                AttentionKind::Linear};

bool gpu_ready() {
#ifdef KRAUSE_WITH_CUDA
    return torch::cuda::is_available();
#else
    return false;
#endif
}

#define SKIP_WITHOUT_GPU()                                                                 \
    do {                                                                                   \
        if (!gpu_ready()) GTEST_SKIP() << "CUDA not available (built without it, or no GPU)"; \
    } while (0)

// A model whose weights are not the initial ones (zero biases would hide mistakes), in `type`.
PixelTransformer random_model(const ModelConfig& config, at::ScalarType type) {
    PixelTransformer model(config);
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) p.normal_(0.0, 0.3);
    model->to(type);
    model->eval();
    return model;
}

// Logits of every position from decode_step (host position) and decode_step_at (device
// position): the ring buffer wraps (T = 36 > W = 8), so slots are reused and masked.
TEST(SamplingLoops, DecodeStepAtEqualsDecodeStep) {
    torch::NoGradGuard no_grad;
    for (auto kind : kKinds) {
        SCOPED_TRACE(to_string(kind));
        auto model = random_model(tiny_config(kind), at::kDouble);
        const int64_t T = model->config().seq_len();
        const auto tokens = at::randint(0, 256, {3, T}, at::kLong);
        auto host = model->start_decode(3);
        auto device = model->start_decode(3);
        auto position = at::zeros({1}, at::kLong);
        for (int64_t p = 0; p + 1 < T; ++p) {
            const auto a = model->decode_step(host, tokens.select(1, p));
            const auto b = model->decode_step_at(device, tokens.select(1, p), position);
            position.add_(1);
            ASSERT_LT(test::max_abs_diff(a, b), 1e-10) << "position " << p;
        }
    }
}

TEST(SamplingLoops, DeviceLoopDrawsTheHostLoopsImages) {
    for (auto kind : kKinds) {
        SCOPED_TRACE(to_string(kind));
        auto model = random_model(tiny_config(kind), at::kDouble);
        for (int64_t prompt : {0, 1, 9}) {
            SampleOptions options;
            options.count = 5;
            options.seed = std::random_device{}();
            options.temperature = 1.3;
            if (prompt > 0) options.prefix = at::randint(0, 256, {5, prompt}, at::kLong);
            options.loop = DecodeLoop::Host;
            const auto host = sample(model, options);
            options.loop = DecodeLoop::Device;
            const auto device = sample(model, options);
            EXPECT_TRUE(at::equal(host.tokens, device.tokens))
                << "prompt " << prompt << ", seed " << options.seed;
            EXPECT_EQ(device.filled, model->config().seq_len());
        }
    }
}

TEST(SamplingLoops, DeviceLoopReportsGrowingProgressStopsAndEndsEarly) {
    auto model = random_model(tiny_config(AttentionKind::Krause), at::kFloat);
    const int64_t T = model->config().seq_len();
    SampleOptions options;
    options.count = 2;
    options.loop = DecodeLoop::Device;
    std::vector<int64_t> seen;
    options.on_token = [&](int64_t filled, const at::Tensor& tokens) {
        seen.push_back(filled);
        ASSERT_EQ(tokens.sizes(), (std::vector<int64_t>{2, T}));
        if (filled < T) EXPECT_EQ(tokens.narrow(1, filled, T - filled).sum().item<int64_t>(), 0);
    };
    const auto full = sample(model, options);
    ASSERT_GE(seen.size(), 2u);
    EXPECT_EQ(seen.front(), 1);
    EXPECT_EQ(seen.back(), T);
    for (size_t i = 1; i < seen.size(); ++i) EXPECT_GT(seen[i], seen[i - 1]);

    seen.clear();
    options.until = 10;
    const auto part = sample(model, options);
    EXPECT_EQ(part.filled, 10);
    EXPECT_FALSE(part.stopped);
    EXPECT_EQ(seen.back(), 10);
    EXPECT_TRUE(at::equal(part.tokens.narrow(1, 0, 10), full.tokens.narrow(1, 0, 10)));
    EXPECT_EQ(part.tokens.narrow(1, 10, T - 10).sum().item<int64_t>(), 0);

    std::atomic<bool> stop{true};
    options.until = 0;
    options.on_token = nullptr;
    options.stop = &stop;
    const auto stopped = sample(model, options);
    EXPECT_TRUE(stopped.stopped);
    EXPECT_EQ(stopped.filled, 1);
}

TEST(SamplingLoops, OptionsAreChecked) {
    auto model = random_model(tiny_config(AttentionKind::Krause), at::kFloat);
    SampleOptions options;
    options.until = -1;
    EXPECT_THROW(sample(model, options), std::invalid_argument);
    options.until = 0;
    options.loop = DecodeLoop::Graph;  // the model is on the CPU
    EXPECT_THROW(sample(model, options), std::invalid_argument);
    EXPECT_THROW(parse_sample_precision("fp16"), std::invalid_argument);
    EXPECT_THROW(parse_decode_loop("fast"), std::invalid_argument);
    EXPECT_EQ(parse_sample_precision("bf16"), SamplePrecision::BFloat16);
    EXPECT_EQ(parse_sample_precision("fp8"), SamplePrecision::Float8);
    options.loop = DecodeLoop::Auto;  // fp8 rings need a GPU: the model is on the CPU
    options.precision = SamplePrecision::Float8;
    EXPECT_THROW(sample(model, options), std::invalid_argument);
    options.precision = SamplePrecision::Auto;
    EXPECT_EQ(parse_decode_loop("graph"), DecodeLoop::Graph);
}

#ifdef KRAUSE_WITH_CUDA
// The replayable step stores the new key and value in their ring slot and reads the slot count
// on the GPU; it must equal storing them by hand and calling the host-count kernel, at every
// position before and after the ring fills, with q, k, v as thirds of one projection.
// With key norms it also stores each new key's squared norm beside the ring and, where
// krause_decode_uses_key_norms says so (bf16 and fp16 rings at head size 64), forms its distances
// on tensor cores as ||q||^2 + ||k||^2 - 2 q.k:
// there its output stays within a rounding of the step's dtype (or the swap of a least kept key
// on a near tie) of the direct form's; elsewhere (fp32 and fp8 rings, head sizes 32 and 20) it
// is the direct form's bit for bit.
TEST(SamplingLoops, CudaDecodeStepEqualsStoreThenDecode) {
    SKIP_WITHOUT_GPU();
    const int64_t S = 40, K = 12, H = 4;
    std::vector<at::ScalarType> rings = {at::kFloat, at::kBFloat16, at::kHalf};
#ifdef KRAUSE_TEST_HAS_FP8
    rings.push_back(at::kByte);  // fp8 rings, bf16 steps
#endif
    const auto o = at::TensorOptions().device(at::kCUDA);
    for (bool with_norms : {false, true}) {
        for (int64_t D : {32, 64, 20}) {
            for (auto ring : rings) {
                const auto type = ring == at::kByte ? at::kBFloat16 : ring;  // the step's dtype
                // What a ring slot holds for a step row: the row, or its fp8 bytes; and back.
                auto stored = [&](const at::Tensor& t) {
#ifdef KRAUSE_TEST_HAS_FP8
                    if (ring == at::kByte) return test::fp8_bytes(t);
#endif
                    return t.to(ring);
                };
                auto floats = [&](const at::Tensor& r) {
#ifdef KRAUSE_TEST_HAS_FP8
                    if (ring == at::kByte) return r.view(at::kFloat8_e4m3fn).to(at::kFloat);
#endif
                    return r.to(at::kFloat);
                };
                const bool exact = !with_norms || !krause_decode_uses_key_norms(ring, D);
                for (int warps : test::kDecodeWarpChoices) {
                    auto keys = stored(at::randn({3, H, S, D}, o));
                    auto values = stored(at::randn({3, H, S, D}, o));
                    auto norms = with_norms ? floats(keys).pow(2).sum(-1) : at::Tensor();
                    const auto ls = at::rand({H}, o) * 0.8 + 0.3;
                    double worst = 0.0, total = 0.0;
                    for (int64_t p : {0, 5, 11, 12, 39, 40, 77}) {
                        SCOPED_TRACE(::testing::Message()
                                     << "norms " << with_norms << " D " << D << " ring " << ring
                                     << " warps " << warps << " position " << p);
                        const auto qkv = at::randn({3, 1, 3 * H * D}, o).to(type);
                        auto split = [&](int64_t i) {
                            return qkv.narrow(2, i * H * D, H * D)
                                .view({3, 1, H, D})
                                .transpose(1, 2);
                        };
                        auto ref_keys = keys.clone(), ref_values = values.clone();
                        ref_keys.narrow(2, p % S, 1).copy_(stored(split(1)));
                        ref_values.narrow(2, p % S, 1).copy_(stored(split(2)));
                        const auto expect =
                            krause_decode_cuda(split(0), ref_keys, ref_values, p, ls, K, warps)
                                .to(type);
                        const auto position = at::full({1}, p, o.dtype(at::kLong));
                        const auto got =
                            krause_decode_step_cuda(split(0), split(1), split(2), keys, values,
                                                    position, ls, K, warps, norms);
                        EXPECT_TRUE(at::equal(keys, ref_keys));
                        EXPECT_TRUE(at::equal(values, ref_values));
                        if (with_norms) {
                            const auto added = floats(ref_keys.narrow(2, p % S, 1)).pow(2).sum(-1);
                            EXPECT_LT(test::max_abs_diff(norms.narrow(2, p % S, 1), added),
                                      1e-6 * (1.0 + added.abs().max().item<double>()));
                        }
                        if (exact) {
                            EXPECT_TRUE(at::equal(got, expect));
                            continue;
                        }
                        const auto diff = (got.to(at::kFloat) - expect.to(at::kFloat)).abs();
                        const auto bound = expect.to(at::kFloat).abs() * 0.01 + 0.02;
                        EXPECT_TRUE(diff.le(bound).all().item<bool>())
                            << "largest difference " << diff.max().item<double>();
                        worst = std::max(worst, diff.max().item<double>());
                        total += diff.mean().item<double>();
                    }
                    // Typically a few units in the last place of the step's dtype, on average
                    // far less.
                    if (!exact) {
                        EXPECT_LT(total / 7, 2e-3) << "worst " << worst;
                    }
                }
            }
        }
    }
}
#endif

// The captured graph replays exactly the step the Device loop launches op by op.
TEST(SamplingLoops, GraphLoopEqualsDeviceLoopOnTheGpu) {
    SKIP_WITHOUT_GPU();
    for (auto kind : kKinds) {
        SCOPED_TRACE(to_string(kind));
        auto model = random_model(tiny_config(kind, 8, 8, 3), at::kFloat);
        model->to(at::kCUDA);
        SampleOptions options;
        options.count = 7;
        options.seed = std::random_device{}();
        options.prefix = at::randint(0, 256, {7, 20}, at::kLong);
        for (auto precision :
             {SamplePrecision::Float32, SamplePrecision::BFloat16, SamplePrecision::Float8}) {
            options.precision = precision;
            options.loop = DecodeLoop::Device;
            const auto device = sample(model, options);
            options.loop = DecodeLoop::Graph;
            const auto graph = sample(model, options);
            EXPECT_TRUE(at::equal(device.tokens, graph.tokens)) << "seed " << options.seed;
            EXPECT_TRUE(at::equal(graph.tokens.narrow(1, 0, 20).to(at::kLong), options.prefix));
        }
    }
}

// bf16 sampling trades precision, fp8 ring buffers more (every cached key and value keeps 3
// mantissa bits): the decode logits of both stay close to the fp32 forward pass. The Host loop,
// which cannot read fp8 rings, refuses them.
TEST(SamplingLoops, Bf16AndFp8DecodeStayCloseToTheFp32Forward) {
    SKIP_WITHOUT_GPU();
    torch::NoGradGuard no_grad;
    PixelTransformer model(tiny_config(AttentionKind::Krause, 8, 8, 1));
    model->to(at::kCUDA);
    model->eval();
    auto half = copy_model(model, at::kCUDA, at::kBFloat16);
    const int64_t T = model->config().seq_len();
    const auto tokens =
        at::randint(0, 256, {4, T}, at::TensorOptions().device(at::kCUDA).dtype(at::kLong));
    const auto exact = at::log_softmax(model->forward(tokens.narrow(1, 0, T - 1)), -1);
    double diff[2] = {};
    for (bool fp8 : {false, true}) {
        auto state = half->start_decode(4, fp8);
        EXPECT_EQ(state.layers[0].keys.scalar_type(), fp8 ? at::kByte : at::kBFloat16);
        auto position = at::zeros({1}, tokens.options());
        std::vector<at::Tensor> steps;
        for (int64_t p = 0; p + 1 < T; ++p) {
            steps.push_back(
                half->decode_step_at(state, tokens.select(1, p), position).to(at::kFloat));
            position.add_(1);
        }
        const auto approx = at::log_softmax(at::stack(steps, 1), -1);
        diff[fp8] = (approx - exact).abs().mean().item<double>();
    }
    std::printf("[bf16 decode] mean |log p - log p_fp32| = %.2e nats, %.2e with fp8 rings\n",
                diff[0], diff[1]);
    EXPECT_LT(diff[0], 0.02);
    EXPECT_LT(diff[1], 0.1);
    EXPECT_GT(diff[1], diff[0]);  // the rings are fp8 indeed

    SampleOptions options;
    options.count = 3;
    options.precision = SamplePrecision::Float8;
    options.loop = DecodeLoop::Host;
    EXPECT_THROW(sample(model, options), std::invalid_argument);
}

#ifdef KRAUSE_WITH_CUDA
// A bf16 model of head size 64 keeps the squared norms of its ring keys (its decode step forms
// distances on tensor cores) and decodes, at every position, what the fp32 forward pass computes
// to bf16's precision; with fp8 rings it keeps them as krause_decode_uses_key_norms rules.
TEST(SamplingLoops, KeyNormsWhereTheDecodeStepUsesThem) {
    SKIP_WITHOUT_GPU();
    torch::NoGradGuard no_grad;
    // The rule itself: tensor cores for bf16 and fp16 rings at head size 64 (compute capability
    // 8.0+), the direct form for fp8 and fp32 rings and for other head sizes.
    const bool mma = at::cuda::getCurrentDeviceProperties()->major >= 8;
    EXPECT_EQ(krause_decode_uses_key_norms(at::kBFloat16, 64), mma);
    EXPECT_EQ(krause_decode_uses_key_norms(at::kHalf, 64), mma);
    EXPECT_FALSE(krause_decode_uses_key_norms(at::kByte, 64));
    EXPECT_FALSE(krause_decode_uses_key_norms(at::kFloat, 64));
    EXPECT_FALSE(krause_decode_uses_key_norms(at::kBFloat16, 32));
    auto config = tiny_config(AttentionKind::Krause, 8, 8, 1);
    config.d_model = 128;
    config.n_heads = 2;  // head size 64
    PixelTransformer model(config);
    model->to(at::kCUDA);
    model->eval();
    auto half = copy_model(model, at::kCUDA, at::kBFloat16);
    EXPECT_EQ(half->start_decode(2, true).layers[0].key_norms.defined(),
              krause_decode_uses_key_norms(at::kByte, 64));
    auto state = half->start_decode(2, false);
    const bool kept = krause_decode_uses_key_norms(at::kBFloat16, 64);
    EXPECT_EQ(state.layers[0].key_norms.defined(), kept);
    const int64_t T = config.seq_len();
    const auto tokens =
        at::randint(0, 256, {2, T}, at::TensorOptions().device(at::kCUDA).dtype(at::kLong));
    const auto exact = at::log_softmax(model->forward(tokens.narrow(1, 0, T - 1)), -1);
    auto position = at::zeros({1}, tokens.options());
    std::vector<at::Tensor> steps;
    for (int64_t p = 0; p + 1 < T; ++p) {
        steps.push_back(half->decode_step_at(state, tokens.select(1, p), position).to(at::kFloat));
        position.add_(1);
    }
    const auto approx = at::log_softmax(at::stack(steps, 1), -1);
    EXPECT_LT((approx - exact).abs().mean().item<double>(), 0.02);
    if (kept) {
        for (const auto& layer : state.layers) {
            const auto norms = layer.keys.to(at::kFloat).pow(2).sum(-1);
            EXPECT_TRUE(at::allclose(layer.key_norms, norms, 1e-5, 1e-6));
        }
    }
}
#endif

}  // namespace
}  // namespace krause
