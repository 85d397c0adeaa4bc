// Test-set bits per dimension in batches, and small helpers shared by training and evaluation.
#include "training/evaluate.h"

#include <torch/cuda.h>
#include <torch/nn/module.h>

#include <chrono>
#include <cmath>
#include <stdexcept>

namespace krause {

at::Tensor images_tensor(const Dataset& dataset) {
    const int64_t n = dataset.size(), t = dataset.seq_len();
    auto out = at::empty({n, t}, at::kByte);
    if (n > 0) std::memcpy(out.data_ptr<uint8_t>(), dataset.tokens.data(), n * t);
    return out;
}

at::Device pick_device(const std::string& name) {
    if (name == "cpu") return at::Device(at::kCPU);
    const bool cuda = torch::cuda::is_available();
    if (name == "cuda") {
        if (!cuda) {
            throw std::runtime_error(
                "device cuda: no CUDA device is available to this build (use the cpu device)");
        }
        return at::Device(at::kCUDA);
    }
    if (name != "auto") throw std::invalid_argument("unknown device '" + name + "'");
    return cuda ? at::Device(at::kCUDA) : at::Device(at::kCPU);
}

at::Tensor evaluate_nll_sums(PixelTransformer& model, const at::Tensor& images,
                             int64_t batch_size,
                             const std::function<void(int64_t, int64_t)>& progress,
                             const std::atomic<bool>* stop) {
    const int64_t T = model->config().seq_len();
    if (images.dim() != 2 || images.size(1) != T) {
        throw std::invalid_argument("evaluate: images have " + std::to_string(images.size(-1)) +
                                    " sub-pixels, the model expects " + std::to_string(T));
    }
    if (batch_size < 1) throw std::invalid_argument("evaluate: batch size must be >= 1");
    torch::NoGradGuard no_grad;
    const bool was_training = model->is_training();
    model->eval();
    const auto device = model->pos_emb.device();
    const int64_t n = images.size(0);
    // Sums stay on the device and in fp64 until the end: one host sync per evaluation.
    auto sums = at::zeros({3}, at::TensorOptions().dtype(at::kDouble).device(device));
    int64_t done = 0;
    for (int64_t begin = 0; begin < n; begin += batch_size) {
        if (stop && stop->load()) break;
        const int64_t len = std::min(batch_size, n - begin);
        const auto batch = images.narrow(0, begin, len).to(device).to(at::kLong);
        const auto nll = model->token_nll(batch).to(at::kDouble);  // (len, T)
        sums[0] += nll.sum();
        sums[1] += nll.narrow(1, 1, T - 1).sum();
        done += len;
        if (progress) progress(done, n);
    }
    sums[2] = static_cast<double>(done);
    if (was_training) model->train();
    return sums;
}

EvalResult bpd_from_sums(const at::Tensor& sums, int64_t seq_len) {
    const auto s = sums.to(at::kCPU).to(at::kDouble).contiguous();
    const double* v = s.data_ptr<double>();
    EvalResult r;
    r.images = static_cast<int64_t>(v[2]);
    if (r.images > 0) {
        r.bpd_all = v[0] / (v[2] * seq_len * std::log(2.0));
        r.bpd_predicted = v[1] / (v[2] * (seq_len - 1) * std::log(2.0));
    }
    return r;
}

EvalResult evaluate_bpd(PixelTransformer& model, const at::Tensor& images, int64_t batch_size,
                        const std::function<void(int64_t, int64_t)>& progress,
                        const std::atomic<bool>* stop) {
    const auto start = std::chrono::steady_clock::now();
    const auto sums = evaluate_nll_sums(model, images, batch_size, progress, stop);
    EvalResult r = bpd_from_sums(sums, model->config().seq_len());
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return r;
}

}  // namespace krause
