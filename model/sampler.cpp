// Ancestral sampling over the decode caches; the prompt is fed through the same steps.
#include "model/sampler.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/module.h>

#include <stdexcept>

namespace krause {

at::Tensor sample_categorical(const at::Tensor& probs, const at::Tensor& u) {
    const auto cdf = at::cumsum(probs.to(at::kDouble), -1);              // (N, C)
    const auto threshold = u.to(at::kDouble).view({-1, 1}) * cdf.narrow(-1, cdf.size(-1) - 1, 1);
    return cdf.le(threshold).sum(-1).clamp_max(probs.size(-1) - 1);     // (N)
}

at::Tensor draw_tokens(const at::Tensor& logits, double temperature, const at::Tensor& u) {
    return sample_categorical(at::softmax(logits.to(at::kFloat) / temperature, -1), u);
}

SamplePrecision parse_sample_precision(const std::string& name) {
    if (name == "auto") return SamplePrecision::Auto;
    if (name == "fp32") return SamplePrecision::Float32;
    if (name == "bf16") return SamplePrecision::BFloat16;
    if (name == "fp8") return SamplePrecision::Float8;
    throw std::invalid_argument("unknown precision '" + name + "' (auto, fp32, bf16 or fp8)");
}

DecodeLoop parse_decode_loop(const std::string& name) {
    if (name == "auto") return DecodeLoop::Auto;
    if (name == "host") return DecodeLoop::Host;
    if (name == "device") return DecodeLoop::Device;
    if (name == "graph") return DecodeLoop::Graph;
    throw std::invalid_argument("unknown decode loop '" + name + "' (auto, host, device or graph)");
}

SampleResult sample(PixelTransformer& model, const SampleOptions& options) {
    const int64_t T = model->config().seq_len();
    const int64_t n = options.count;
    if (n < 1) throw std::invalid_argument("sample: count must be >= 1");
    if (!(options.temperature > 0.0)) throw std::invalid_argument("sample: temperature must be > 0");
    if (options.until < 0) throw std::invalid_argument("sample: until must be >= 0");

    at::Tensor prefix;  // (n, P) int64 on the CPU
    if (options.prefix.defined() && options.prefix.numel() > 0) {
        prefix = options.prefix.to(at::kCPU).to(at::kLong);
        if (prefix.dim() == 1) prefix = prefix.unsqueeze(0).expand({n, prefix.size(0)});
        if (prefix.dim() != 2 || prefix.size(0) != n || prefix.size(1) > T) {
            throw std::invalid_argument("sample: prefix must be (P) or (count, P) with P <= T");
        }
        if (prefix.min().item<int64_t>() < 0 || prefix.max().item<int64_t>() > 255) {
            throw std::invalid_argument("sample: prefix tokens must be in 0..255");
        }
    }

    const bool cuda = model->pos_emb.is_cuda();
    DecodeLoop loop = options.loop;
    if (loop == DecodeLoop::Auto) loop = cuda ? DecodeLoop::Graph : DecodeLoop::Host;
    if (loop == DecodeLoop::Graph && !cuda) {
        throw std::invalid_argument("sample: the Graph loop needs the model on a GPU");
    }
    const bool fp8 = options.precision == SamplePrecision::Float8;
    if (fp8 && (!cuda || loop == DecodeLoop::Host)) {
        throw std::invalid_argument(
            "sample: fp8 ring buffers need the model on a GPU and the device or graph loop");
    }
    const bool to_bf16 = fp8 || options.precision == SamplePrecision::BFloat16 ||
                         (options.precision == SamplePrecision::Auto && cuda);
    if (to_bf16 && model->pos_emb.scalar_type() != at::kBFloat16) {
        auto copy = copy_model(model, model->pos_emb.device(), at::kBFloat16);
        return sample(copy, [&] {
            SampleOptions o = options;
            // Keep the copy's type (and fp8 rings).
            o.precision = fp8 ? SamplePrecision::Float8 : SamplePrecision::Float32;
            o.loop = loop;
            return o;
        }());
    }
    if (loop != DecodeLoop::Host) {
        return sample_replayed(model, options, prefix, loop == DecodeLoop::Graph);
    }

    const int64_t P = prefix.defined() ? prefix.size(1) : 0;
    const int64_t until = options.until > 0 ? std::min(options.until, T) : T;
    torch::NoGradGuard no_grad;
    const bool was_training = model->is_training();
    model->eval();
    const auto device = model->pos_emb.device();
    auto gen = at::detail::createCPUGenerator(options.seed);
    const auto u = at::rand({T, n}, gen, at::TensorOptions().dtype(at::kDouble));  // row p: x[p]
    auto draw = [&](const at::Tensor& logits, int64_t p) {  // (n, 256) -> (n) int64 on the CPU
        return draw_tokens(logits.to(at::kCPU), options.temperature, u.select(0, p));
    };

    SampleResult result;
    result.tokens = at::zeros({n, T}, at::kByte);
    auto column = [&](int64_t p) -> at::Tensor {
        if (p < P) return prefix.select(1, p).clone();
        return at::Tensor();
    };

    at::Tensor current = column(0);
    if (!current.defined()) current = draw(model->prior.unsqueeze(0).expand({n, 256}), 0);
    result.tokens.select(1, 0).copy_(current);
    result.filled = 1;
    if (options.on_token) options.on_token(1, result.tokens);

    auto state = model->start_decode(n);
    for (int64_t p = 0; p + 1 < until; ++p) {
        if (options.stop && options.stop->load()) {
            result.stopped = true;
            break;
        }
        const auto logits = model->decode_step(state, current.to(device));
        current = column(p + 1);
        if (!current.defined()) current = draw(logits, p + 1);
        result.tokens.select(1, p + 1).copy_(current);
        result.filled = p + 2;
        if (options.on_token) options.on_token(result.filled, result.tokens);
    }
    if (was_training) model->train();
    return result;
}

}  // namespace krause
