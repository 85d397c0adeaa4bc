// Training time from a FLOP count: forward and backward of every layer's projections, MLP and
// attention window over a batch, divided by what a CPU core sustains in LibTorch's fp32 kernels.
#include "training/estimate.h"

#include "data/dataset.h"
#include "model/config.h"
#include "training/options.h"

#include <torch/cuda.h>

#include <algorithm>
#include <cmath>
#include <thread>

namespace krause {

namespace {

// Sustained fp32 FLOP/s of one core in training, calibrated on a 2-core machine where a
// cifar10 step (batch 16) took about 100 s; a rough figure, good to a factor of two.
constexpr double kCpuFlopsPerCore = 8e10;

int64_t train_images(const std::string& data) {
    // Partial copies only make the estimate pessimistic.
    return official_size(parse_dataset_kind(data.substr(0, data.find(':'))), Split::Train);
}

}  // namespace

double training_step_flops(const TrainConfig& config) {
    const ModelConfig m = model_config(config);  // the preset with the model options applied
    const double d = static_cast<double>(m.d_model);
    const double T = static_cast<double>(m.seq_len());
    double keys = 0;  // keys each query attends to, on average
    switch (m.attention) {
        case AttentionKind::Softmax: keys = T / 2; break;
        case AttentionKind::Linear: keys = d / static_cast<double>(m.n_heads); break;
        default: keys = std::min<double>(static_cast<double>(m.window), T); break;
    }
    // Per token and layer: q, k, v, out projections (4 d^2) and the MLP (8 d^2), two FLOPs per
    // multiply-add, plus scores and weighted values; the output head maps d to 256 logits.
    const double per_token =
        static_cast<double>(m.n_layers) * (2 * 12 * d * d + 2 * 2 * keys * d) + 2 * d * 256;
    // The backward pass costs about twice the forward.
    return 3 * per_token * T * static_cast<double>(config.batch_size);
}

TrainEstimate estimate_training(const TrainConfig& config) {
    TrainEstimate e;
    int64_t images = train_images(config.data);
    if (config.train_limit > 0) images = std::min(images, config.train_limit);
    const int64_t B = std::max<int64_t>(1, config.batch_size);
    e.steps = config.epochs > 0
                  ? static_cast<int64_t>(std::ceil(config.epochs * static_cast<double>(images) / B))
                  : config.steps;
    e.on_cpu = config.device == "cpu" || (config.device == "auto" && !torch::cuda::is_available());
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    e.threads = config.threads > 0 ? std::min<int>(config.threads, static_cast<int>(cores))
                                   : static_cast<int>(cores);
    if (config.minutes > 0) e.seconds = config.minutes * 60;
    if (!e.on_cpu) return e;  // no calibration for GPUs; they are fast enough not to warn about
    e.seconds_per_step = training_step_flops(config) / (kCpuFlopsPerCore * e.threads);
    if (config.minutes > 0) {
        e.steps = std::max<int64_t>(1, static_cast<int64_t>(e.seconds / e.seconds_per_step));
    } else {
        e.seconds = e.seconds_per_step * static_cast<double>(e.steps);
    }
    return e;
}

}  // namespace krause
