// The fused CUDA Krause kernels against the ATen path: values, gradients, decoding, a whole model.
// Each test skips, saying why, when built without the kernels or when no GPU is visible.
#include "model/attention.h"
#include "model/kernel_check.h"
#include "model/transformer.h"
#include "test_util.h"

#ifdef KRAUSE_WITH_CUDA
#include "model/krause_attention_cuda.h"

#include <ATen/cuda/CUDAContext.h>
#endif

#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/cuda.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace krause {
namespace {

std::string cuda_missing() {
#ifndef KRAUSE_WITH_CUDA
    return "built without the CUDA kernels (LibTorch with CUDA and nvcc are needed; "
           "see scripts/build-cuda.sh)";
#else
    return torch::cuda::is_available() ? "" : "no GPU visible to LibTorch";
#endif
}

// GTEST_SKIP returns from the test body that calls it, hence a macro.
#define SKIP_WITHOUT_CUDA()                                                \
    do {                                                                    \
        const std::string why = cuda_missing();                             \
        if (!why.empty()) GTEST_SKIP() << "CUDA not available: " << why;    \
    } while (0)

// The fused kernels through the model's dispatch, which must choose them: on tensor cores where
// asked (bf16), else on CUDA cores.
at::Tensor fused_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           const at::Tensor& log_sigma, int64_t window, int64_t top_k,
                           bool tensor_cores = true) {
    KernelOptions kernels;
    kernels.tensor_cores = tensor_cores;
    const bool tc = tensor_cores && q.scalar_type() == at::kBFloat16 &&
                    std::min(window, q.size(2)) <= kTensorCoreMaxWindow;
    EXPECT_EQ(path_name(krause_path(kernels, q, window)),
              path_name(tc ? KrausePath::FusedTensorCores : KrausePath::Fused));
    return krause_attention(q, k, v, log_sigma, window, top_k, kernels);
}

at::Tensor fused_decode(const at::Tensor& q, const at::Tensor& keys, const at::Tensor& values,
                        int64_t position, const at::Tensor& log_sigma, int64_t top_k,
                        int warps) {
#ifdef KRAUSE_WITH_CUDA
    return krause_decode_cuda(q, keys, values, position, log_sigma, top_k, warps);
#else
    TORCH_CHECK(false, "fused_decode: built without the CUDA kernels");
    return {};
#endif
}

using test::fresh_seed;

const char* dtype_name(at::ScalarType t) {
    return t == at::kFloat ? "fp32" : t == at::kBFloat16 ? "bf16" : "fp16";
}

using KrauseCase = test::KrauseShape;

struct Inputs {
    at::Tensor q, k, v, log_sigma, dout;  // on the GPU
};

// Random inputs drawn on the CPU, rounded to `type` (log_sigma stays fp32), moved to the GPU.
Inputs random_inputs(const KrauseCase& s, at::ScalarType type, uint64_t seed) {
    auto gen = at::detail::createCPUGenerator(seed);
    auto draw = [&](at::IntArrayRef shape) {
        return at::randn(shape, gen, at::kFloat).to(type).to(at::kCUDA);
    };
    Inputs in;
    in.q = draw({s.B, s.H, s.T, s.D});
    in.k = draw({s.B, s.H, s.T, s.D});
    in.v = draw({s.B, s.H, s.T, s.D});
    in.log_sigma = (at::rand({s.H}, gen, at::kFloat) * 0.8 + 0.3).to(at::kCUDA);
    in.dout = draw({s.B, s.H, s.T, s.D});
    return in;
}

Inputs as_double(const Inputs& in) {
    auto d = [](const at::Tensor& t) { return t.to(at::kDouble); };
    return {d(in.q), d(in.k), d(in.v), d(in.log_sigma), d(in.dout)};
}

using AttentionFn = std::function<at::Tensor(const at::Tensor&, const at::Tensor&,
                                             const at::Tensor&, const at::Tensor&)>;

// The output and the gradients w.r.t. q, k, v and log_sigma.
std::vector<at::Tensor> run(const AttentionFn& fn, const Inputs& in) {
    const auto q = in.q.detach().requires_grad_(true);
    const auto k = in.k.detach().requires_grad_(true);
    const auto v = in.v.detach().requires_grad_(true);
    const auto ls = in.log_sigma.detach().requires_grad_(true);
    const auto out = fn(q, k, v, ls);
    auto grads = torch::autograd::grad({out}, {q, k, v, ls}, {in.dout});
    grads.insert(grads.begin(), out.detach());
    return grads;
}

class CudaKrauseAttention : public ::testing::TestWithParam<KrauseCase> {};

TEST_P(CudaKrauseAttention, ValuesAndGradientsWithinTwiceTheAtenError) {
    SKIP_WITHOUT_CUDA();
    const auto s = GetParam();
    const char* names[] = {"out", "dq", "dk", "dv", "dlog_sigma"};
    auto windowed = [&](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                        const at::Tensor& ls) {
        return krause_attention_windowed(q, k, v, ls, s.W, s.K);
    };
    // bf16 runs the kernels on tensor cores and on CUDA cores; fp32 only on CUDA cores.
    struct Path {
        at::ScalarType type;
        bool tensor_cores;
    };
    for (const auto path : {Path{at::kFloat, false}, Path{at::kBFloat16, true},
                            Path{at::kBFloat16, false}}) {
        const auto type = path.type;
        const uint64_t seed = fresh_seed();
        const char* cores = path.tensor_cores ? "tensor cores" : "CUDA cores";
        SCOPED_TRACE(::testing::Message() << s << " " << dtype_name(type) << " " << cores
                                          << " seed " << seed);
        const auto in = random_inputs(s, type, seed);
        const auto exact = run(windowed, as_double(in));
        const auto aten = run(windowed, in);
        const auto mine = run(
            [&](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                const at::Tensor& ls) {
                return fused_attention(q, k, v, ls, s.W, s.K, path.tensor_cores);
            },
            in);
        ASSERT_EQ(mine[0].sizes(), exact[0].sizes());
        ASSERT_EQ(mine[0].scalar_type(), type);
        std::string line;
        for (size_t t = 0; t < exact.size(); ++t) {
            ASSERT_TRUE(mine[t].isfinite().all().item<bool>()) << names[t] << " not finite";
            const double err_fused = relative_error(mine[t], exact[t]);
            const double err_aten = relative_error(aten[t], exact[t]);
            const double slack = t == 4 ? kDlogSigmaFloor : kernel_error_floor(type);
            EXPECT_LE(err_fused, 2.0 * err_aten + slack)
                << names[t] << ": fused " << err_fused << ", ATen " << err_aten;
            char buf[96];
            std::snprintf(buf, sizeof buf, " %s %.2e/%.2e", names[t], err_fused, err_aten);
            line += buf;
        }
        std::printf("[fused/aten rel err] %s %s %s:%s\n",
                    ::testing::PrintToString(s).c_str(), dtype_name(type), cores, line.c_str());
    }
}

INSTANTIATE_TEST_SUITE_P(
    OddShapes, CudaKrauseAttention,
    ::testing::Values(KrauseCase{6, 4, 5, 32, 8, 3},       // W > T
                      KrauseCase{3, 4, 37, 64, 8, 5},      // T not a multiple of the tile
                      KrauseCase{4, 3, 100, 32, 6, 10},    // K >= W
                      KrauseCase{1, 1, 90, 32, 5, 1},      // K = 1
                      KrauseCase{2, 2, 70, 64, 1, 1},      // W = 1
                      KrauseCase{3, 4, 150, 64, 40, 12},   // several heads, B > 1
                      KrauseCase{1, 2, 130, 48, 33, 33},   // D padded to 64, K = W
                      KrauseCase{1, 2, 200, 100, 300, 50},  // D padded to 128, W > T
                      KrauseCase{1, 1, 1, 16, 4, 2},       // T = 1
                      KrauseCase{1, 1, 320, 32, 300, 100},  // W > 256: scores re-read
                      KrauseCase{1, 1, 1600, 32, 1500, 1500},  // scores outgrow shared memory
                      KrauseCase{2, 8, 784, 32, 128, 96},   // the mnist preset
                      KrauseCase{1, 8, 3072, 64, 256, 192}));  // the cifar10 preset

TEST(CudaKrauseAttentionFp16, WithinTwiceTheAtenError) {
    SKIP_WITHOUT_CUDA();
    const KrauseCase s{2, 3, 300, 64, 128, 96};
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    const auto in = random_inputs(s, at::kHalf, seed);
    const auto in64 = as_double(in);
    const auto exact = krause_attention_windowed(in64.q, in64.k, in64.v, in64.log_sigma, s.W, s.K);
    const auto aten = krause_attention_windowed(in.q, in.k, in.v, in.log_sigma, s.W, s.K);
    const auto mine = fused_attention(in.q, in.k, in.v, in.log_sigma, s.W, s.K);
    EXPECT_LE(relative_error(mine, exact),
              2.0 * relative_error(aten, exact) + kernel_error_floor(at::kHalf));
}

// The switch must reach the kernels: on the same bf16 inputs the tensor-core and CUDA-core paths
// sum in other orders, so their outputs and gradients differ in the last bits somewhere (both are
// held to the ATen error above).
TEST(CudaKrauseAttentionTensorCores, SwitchSelectsOtherKernels) {
    SKIP_WITHOUT_CUDA();
#ifdef KRAUSE_WITH_CUDA
    if (at::cuda::getCurrentDeviceProperties()->major < 8) {
        GTEST_SKIP() << "tensor-core kernels need compute capability 8.0";
    }
#endif
    const KrauseCase s{2, 4, 300, 32, 128, 96};
    const auto in = random_inputs(s, at::kBFloat16, fresh_seed());
    auto fused = [&](bool tensor_cores) {
        return [&, tensor_cores](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                 const at::Tensor& ls) {
            return fused_attention(q, k, v, ls, s.W, s.K, tensor_cores);
        };
    };
    const auto on = run(fused(true), in);
    const auto off = run(fused(false), in);
    const char* names[] = {"out", "dq", "dk", "dv"};
    for (size_t t = 0; t < 4; ++t) EXPECT_FALSE(on[t].equal(off[t])) << names[t];
}

TEST(CudaKrauseAttentionInference, NoGradPathEqualsTheAutogradPath) {
    SKIP_WITHOUT_CUDA();
    const KrauseCase s{2, 2, 333, 64, 256, 192};
    const auto in = random_inputs(s, at::kBFloat16, fresh_seed());
    const auto with_grad = fused_attention(in.q, in.k, in.v,
                                           in.log_sigma.detach().requires_grad_(true), s.W, s.K);
    torch::NoGradGuard no_grad;
    const auto plain = fused_attention(in.q, in.k, in.v, in.log_sigma, s.W, s.K);
    EXPECT_TRUE(plain.equal(with_grad.detach()));
}

// Every dtype with every choice of warps per query (0: by batch, one warp at these sizes).
std::vector<std::pair<at::ScalarType, int>> decode_variants() {
    std::vector<std::pair<at::ScalarType, int>> out;
    for (auto type : {at::kFloat, at::kBFloat16}) {
        for (int warps : test::kDecodeWarpChoices) out.emplace_back(type, warps);
    }
    return out;
}

TEST(CudaKrauseDecode, MatchesTheAtenStepWithinTwiceItsError) {
    SKIP_WITHOUT_CUDA();
    struct DecodeCase {
        int64_t S, position, K, D;  // a position of S or more: the ring has wrapped
    };
    for (const auto c : {DecodeCase{8, 4, 3, 32}, DecodeCase{8, 7, 3, 64},
                         DecodeCase{128, 127, 96, 32}, DecodeCase{256, 199, 192, 64},
                         DecodeCase{256, 255, 300, 48}, DecodeCase{300, 289, 100, 64},
                         DecodeCase{1, 0, 1, 32}, DecodeCase{64, 63, 1, 130},
                         DecodeCase{8, 13, 3, 32}, DecodeCase{256, 700, 192, 64}}) {
        for (auto [type, warps] : decode_variants()) {
            const uint64_t seed = fresh_seed();
            SCOPED_TRACE(::testing::Message() << "S" << c.S << " position " << c.position << " K"
                                              << c.K << " D" << c.D << " " << dtype_name(type)
                                              << " warps " << warps << " seed " << seed);
            auto gen = at::detail::createCPUGenerator(seed);
            auto draw = [&](at::IntArrayRef shape) {
                return at::randn(shape, gen, at::kFloat).to(type).to(at::kCUDA);
            };
            const auto q = draw({3, 4, 1, c.D});
            const auto keys = draw({3, 4, c.S, c.D});
            const auto values = draw({3, 4, c.S, c.D});
            const auto ls = (at::rand({4}, gen, at::kFloat) * 0.8 + 0.3).to(at::kCUDA);
            auto d = [](const at::Tensor& t) { return t.to(at::kDouble); };
            const auto exact = krause_decode_ring(d(q), d(keys), d(values), c.position, d(ls), c.K);
            const auto aten = krause_decode_ring(q, keys, values, c.position, ls, c.K);
            const auto mine = fused_decode(q, keys, values, c.position, ls, c.K, warps);
            ASSERT_EQ(mine.sizes(), exact.sizes());
            const double err_fused = relative_error(mine, exact);
            const double err_aten = relative_error(aten, exact);
            EXPECT_LE(err_fused, 2.0 * err_aten + kernel_error_floor(type))
                << "fused " << err_fused << ", ATen " << err_aten;
        }
    }
}

// fp8 ring buffers: the kernel reads e4m3 bytes (encoded here by PyTorch's own float8 type) and
// must match the ATen step over the same rounded keys and values within twice its error.
TEST(CudaKrauseDecode, Fp8RingsMatchTheAtenStepOnTheRoundedValues) {
    SKIP_WITHOUT_CUDA();
#ifndef KRAUSE_TEST_HAS_FP8
    GTEST_SKIP() << "the fp8 reference needs PyTorch's float8 type (LibTorch 2.1 or newer)";
#else
    struct DecodeCase {
        int64_t S, position, K, D;
    };
    for (const auto c : {DecodeCase{8, 4, 3, 32}, DecodeCase{128, 127, 96, 32},
                         DecodeCase{256, 199, 192, 64}, DecodeCase{300, 289, 100, 64},
                         DecodeCase{64, 63, 1, 40}, DecodeCase{1, 0, 1, 32},
                         DecodeCase{128, 300, 96, 32}}) {
        for (int warps : test::kDecodeWarpChoices) {
            const uint64_t seed = fresh_seed();
            SCOPED_TRACE(::testing::Message() << "S" << c.S << " position " << c.position << " K"
                                              << c.K << " D" << c.D << " warps " << warps
                                              << " seed " << seed);
            auto gen = at::detail::createCPUGenerator(seed);
            auto draw = [&](at::IntArrayRef shape) {
                return at::randn(shape, gen, at::kFloat).to(at::kCUDA);
            };
            const auto q = draw({3, 4, 1, c.D}).to(at::kBFloat16);
            const auto keys = draw({3, 4, c.S, c.D}), values = draw({3, 4, c.S, c.D});
            const auto ls = (at::rand({4}, gen, at::kFloat) * 0.8 + 0.3).to(at::kCUDA);
            // e4m3 values are bf16 values: the ATen step sees exactly what the kernel reads.
            const auto rk = test::fp8_rounded(keys).to(at::kBFloat16);
            const auto rv = test::fp8_rounded(values).to(at::kBFloat16);
            auto d = [](const at::Tensor& t) { return t.to(at::kDouble); };
            const auto exact = krause_decode_ring(d(q), d(rk), d(rv), c.position, d(ls), c.K);
            const auto aten = krause_decode_ring(q, rk, rv, c.position, ls, c.K);
            const auto mine = fused_decode(q, test::fp8_bytes(keys), test::fp8_bytes(values),
                                           c.position, ls, c.K, warps);
            ASSERT_EQ(mine.sizes(), exact.sizes());
            const double err_fused = relative_error(mine, exact);
            const double err_aten = relative_error(aten, exact);
            EXPECT_LE(err_fused, 2.0 * err_aten + kernel_error_floor(at::kBFloat16))
                << "fused " << err_fused << ", ATen " << err_aten;
        }
    }
#endif
}

// Max |a - b| per (batch, position) row of (B, S, 256) logits.
at::Tensor row_diffs(const at::Tensor& a, const at::Tensor& b) {
    return (a.to(at::kDouble).cpu() - b.to(at::kDouble).cpu()).abs().amax(-1);  // (B, S)
}

// Top-K can flip a pick where two scores of a window agree to float rounding (the CPU path
// expands ||q - k||^2, decoding projects one token at a time); a flip moves one row by far more
// than rounding. With K >= W nothing is picked and every row must agree; with K < W a few rows
// may carry a flip.
TEST(CudaKrauseModel, FusedForwardMatchesCpuAndDecodingMatchesForward) {
    SKIP_WITHOUT_CUDA();
    torch::NoGradGuard no_grad;
    struct ModelCase {
        int64_t h, w, c, window, top_k;
    };
    for (const auto mc : {ModelCase{10, 10, 1, 24, 12}, ModelCase{6, 6, 3, 40, 30},
                          ModelCase{8, 8, 1, 16, 16}}) {
        ModelConfig config = test::tiny_config(AttentionKind::Krause, mc.h, mc.w, mc.c);
        config.d_model = 64;
        config.n_heads = 2;
        config.window = mc.window;
        config.top_k = mc.top_k;
        PixelTransformer cpu(config);
        cpu->eval();
        auto gpu = copy_model(cpu, at::kCUDA, at::kFloat);
        const int64_t T = config.seq_len();
        const auto tokens = at::randint(0, 256, {3, T - 1}, at::kLong);
        const auto on_cpu = cpu->forward(tokens);                // (3, T-1, 256)
        const auto on_gpu = gpu->forward(tokens.to(at::kCUDA));  // (3, T-1, 256)
        auto state = gpu->start_decode(3);
        std::vector<at::Tensor> steps;
        for (int64_t p = 0; p < T - 1; ++p) {
            steps.push_back(gpu->decode_step(state, tokens.select(1, p).to(at::kCUDA)));
        }
        const auto decoded = at::stack(steps, 1);  // (3, T-1, 256)
        const bool picks = mc.top_k < mc.window;
        const int64_t allowed = picks ? std::max<int64_t>(1, 3 * (T - 1) / 50) : 0;
        for (const auto& [name, diff] : {std::make_pair("gpu vs cpu", row_diffs(on_gpu, on_cpu)),
                                         std::make_pair("decode vs forward",
                                                        row_diffs(decoded, on_gpu))}) {
            const int64_t off = diff.gt(1e-3).sum().item<int64_t>();
            std::printf("[model] T %ld W %ld K %ld %s: max %.2e, median %.2e, rows > 1e-3: %ld\n",
                        static_cast<long>(T), static_cast<long>(mc.window),
                        static_cast<long>(mc.top_k), name, diff.max().item<double>(),
                        diff.median().item<double>(), static_cast<long>(off));
            EXPECT_LE(off, allowed) << name << ", T " << T;
            EXPECT_LT(diff.median().item<double>(), 1e-4) << name << ", T " << T;
        }
    }
}

}  // namespace
}  // namespace krause
