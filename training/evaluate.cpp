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
                "--device cuda: no CUDA device is available to this build (use --device cpu)");
        }
        return at::Device(at::kCUDA);
    }
    if (name != "auto") throw std::invalid_argument("unknown device '" + name + "'");
    return cuda ? at::Device(at::kCUDA) : at::Device(at::kCPU);
}

EvalResult evaluate_bpd(PixelTransformer& model, const at::Tensor& images, int64_t batch_size,
                        const std::function<void(int64_t, int64_t)>& progress,
                        const std::atomic<bool>* stop) {
    const int64_t T = model->config().seq_len();
    if (images.dim() != 2 || images.size(1) != T) {
        throw std::invalid_argument("evaluate: images have " + std::to_string(images.size(-1)) +
                                    " sub-pixels, the model expects " + std::to_string(T));
    }
    if (batch_size < 1) throw std::invalid_argument("evaluate: batch size must be >= 1");
    const auto start = std::chrono::steady_clock::now();
    torch::NoGradGuard no_grad;
    const bool was_training = model->is_training();
    model->eval();
    const auto device = model->pos_emb.device();
    const int64_t n = images.size(0);
    // Sums stay on the device and in fp64 until the end: one host sync per evaluation.
    auto sum_all = at::zeros({}, at::TensorOptions().dtype(at::kDouble).device(device));
    auto sum_pred = sum_all.clone();
    int64_t done = 0;
    for (int64_t begin = 0; begin < n; begin += batch_size) {
        if (stop && stop->load()) break;
        const int64_t len = std::min(batch_size, n - begin);
        const auto batch = images.narrow(0, begin, len).to(device).to(at::kLong);
        const auto nll = model->token_nll(batch).to(at::kDouble);  // (len, T)
        sum_all += nll.sum();
        sum_pred += nll.narrow(1, 1, T - 1).sum();
        done += len;
        if (progress) progress(done, n);
    }
    if (was_training) model->train();
    EvalResult r;
    r.images = done;
    if (done > 0) {
        r.bpd_all = sum_all.item<double>() / (static_cast<double>(done) * T * std::log(2.0));
        r.bpd_predicted =
            sum_pred.item<double>() / (static_cast<double>(done) * (T - 1) * std::log(2.0));
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return r;
}

}  // namespace krause
