// Sampling with the position on the device: every step launches the same work, so on a GPU one
// step is captured as a CUDA graph and replayed, and the host only paces and reports.
#include "model/sampler.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/module.h>

#ifdef KRAUSE_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#endif

#include <array>
#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>

namespace krause {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int64_t kGroup = 8;                       // steps between pacing points
constexpr std::chrono::milliseconds kReportEvery{40};  // between on_token calls

// What one step reads and writes; all on the model's device, allocated once per call.
struct Buffers {
    at::Tensor tokens;    // (n, T) uint8: prompt columns, then x[0..p+1] as they are drawn
    at::Tensor uniforms;  // (T, n) fp64: row p decides x[p]
    at::Tensor position;  // (1) int64: the position the next step consumes
    int64_t prompt = 0;   // P: columns given by the prompt
    double temperature = 1.0;
};

// Consumes x[position], draws x[position + 1] (unless the prompt gives it), advances position.
void step(PixelTransformer& model, DecodeState& state, Buffers& b) {
    const auto x = b.tokens.index_select(1, b.position).squeeze(1);  // (n)
    const auto logits = model->decode_step_at(state, x, b.position);  // (n, 256)
    const auto next = b.position + 1;                                  // (1)
    auto chosen = draw_tokens(logits, b.temperature, b.uniforms.index_select(0, next).squeeze(0));
    if (b.prompt > 1) {
        const auto given = b.tokens.index_select(1, next).squeeze(1).to(at::kLong);
        chosen = at::where(next.lt(b.prompt), given, chosen);
    }
    b.tokens.index_copy_(1, next, chosen.to(at::kByte).unsqueeze(1));
    b.position.add_(1);
}

void reset_caches(DecodeState& state) {
    for (auto& layer : state.layers) {
        for (auto* t : {&layer.keys, &layer.values, &layer.key_norms, &layer.state, &layer.norm}) {
            if (t->defined()) t->zero_();
        }
    }
}

#ifdef KRAUSE_WITH_CUDA
// One step captured on a side stream after a warm-up step (which initialises cuBLAS and the
// kernels' attributes outside the capture) and a reset of everything the warm-up wrote.
std::unique_ptr<at::cuda::CUDAGraph> capture_step(PixelTransformer& model, DecodeState& state,
                                                   Buffers& b) {
    const auto first = b.tokens.clone();
    step(model, state, b);
    b.tokens.copy_(first);
    b.position.zero_();
    reset_caches(state);
    auto graph = std::make_unique<at::cuda::CUDAGraph>();
    // Thread-local capture: other threads (a training job) may keep allocating meanwhile.
    graph->capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
    try {
        step(model, state, b);
    } catch (...) {
        // End the capture so the stream and the allocator leave capture mode; the step's own
        // error is the one to report.
        try {
            graph->capture_end();
        } catch (...) {
        }
        throw;
    }
    graph->capture_end();
    return graph;
}
#endif

}  // namespace

SampleResult sample_replayed(PixelTransformer& model, const SampleOptions& options,
                             const at::Tensor& prefix, bool graph) {
    const int64_t T = model->config().seq_len();
    const int64_t n = options.count;
    const int64_t until = options.until > 0 ? std::min(options.until, T) : T;
    const int64_t P = prefix.defined() ? prefix.size(1) : 0;
    const auto device = model->pos_emb.device();
#ifndef KRAUSE_WITH_CUDA
    if (graph) throw std::invalid_argument("sample: built without CUDA, no Graph loop");
#else
    TORCH_CHECK(!graph || device.is_cuda(), "sample: the Graph loop needs the model on a GPU");
    std::optional<c10::cuda::CUDAGuard> device_guard;
    std::optional<c10::cuda::CUDAStreamGuard> stream_guard;
    if (device.is_cuda()) {
        device_guard.emplace(device);
        // Graphs are captured on a side stream; it starts after the work queued so far.
        at::cuda::getCurrentCUDAStream().synchronize();
        stream_guard.emplace(at::cuda::getStreamFromPool(false, device.index()));
    }
#endif
    torch::NoGradGuard no_grad;
    const bool was_training = model->is_training();
    model->eval();

    auto gen = at::detail::createCPUGenerator(options.seed);
    const auto u = at::rand({T, n}, gen, at::TensorOptions().dtype(at::kDouble));  // row p: x[p]
    auto tokens = at::zeros({n, T}, at::kByte);
    if (P > 0) tokens.narrow(1, 0, P).copy_(prefix);
    if (P == 0) {
        const auto prior = model->prior.to(at::kCPU).unsqueeze(0).expand({n, 256});
        tokens.select(1, 0).copy_(draw_tokens(prior, options.temperature, u.select(0, 0)));
    }

    Buffers b;
    b.tokens = tokens.to(device);
    b.uniforms = u.to(device);
    b.position = at::zeros({1}, at::TensorOptions().dtype(at::kLong).device(device));
    b.prompt = P;
    b.temperature = options.temperature;
    auto state = model->start_decode(n, options.precision == SamplePrecision::Float8);

    SampleResult result;
    result.filled = 1;
    // Tokens known so far on the CPU, unknown columns zero (the prompt is revealed as reached).
    auto snapshot = [&](int64_t filled) {
        auto cpu = b.tokens.to(at::kCPU);
        if (filled < T) cpu.narrow(1, filled, T - filled).zero_();
        return cpu;
    };
    if (options.on_token) options.on_token(1, snapshot(1));

#ifdef KRAUSE_WITH_CUDA
    std::unique_ptr<at::cuda::CUDAGraph> captured;
    if (graph && until > 1) captured = capture_step(model, state, b);
    // Pacing: the host waits for the group of steps before last, so the GPU always has a group
    // queued and a stop request is seen within about two groups.
    std::array<at::cuda::CUDAEvent, 2> groups;
#endif
    auto last_report = Clock::now();
    int64_t queued = 1;  // sub-pixels known once the queued steps finish
    for (int64_t p = 0; p + 1 < until; ++p) {
        if (options.stop && options.stop->load()) {
            result.stopped = true;
            break;
        }
#ifdef KRAUSE_WITH_CUDA
        if (captured) {
            captured->replay();
        } else {
            step(model, state, b);
        }
        if (device.is_cuda() && (p + 1) % kGroup == 0) {
            auto& mine = groups[(p / kGroup) % 2];
            mine.record();
            groups[(p / kGroup + 1) % 2].synchronize();  // a no-op until first recorded
        }
#else
        step(model, state, b);
#endif
        queued = p + 2;
        if (options.on_token && queued < until && Clock::now() - last_report >= kReportEvery) {
            options.on_token(queued, snapshot(queued));  // the copy waits for the queued steps
            last_report = Clock::now();
        }
    }
    result.filled = queued;
    result.tokens = snapshot(queued);
    if (options.on_token && queued > 1) options.on_token(queued, result.tokens);
    if (was_training) model->train();
    return result;
}

}  // namespace krause
