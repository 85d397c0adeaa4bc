// The training loop behind `krause train` and the studio's Train panel.
#include "training/trainer.h"

#include "model/checkpoint.h"
#include "model/probe.h"
#include "model/sampler.h"
#include "training/autocast.h"
#include "training/data_order.h"
#include "training/distributed.h"
#include "training/evaluate.h"
#include "training/metrics.h"
#include "training/optimizer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/DeviceGuard.h>
#include <torch/nn/module.h>
#include <torch/version.h>
#include <torch/utils.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <mutex>
#include <optional>
#include <stdexcept>

namespace krause {
namespace {

using Clock = std::chrono::steady_clock;

at::Tensor cpu_rng_state() {
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    return gen.get_state();
}

std::string fixed(double v, int digits) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
    return buf;
}

struct Resumed {
    PixelTransformer model{nullptr};
    int64_t step = 0;
    int64_t optimizer_steps = 0;
    at::Tensor exp_avg, exp_avg_sq, rng_cpu;
};

Resumed load_resume(const std::string& path) {
    auto ck = load_checkpoint(path);
    Resumed r;
    r.model = ck.model;
    auto number = [&](const char* key) -> int64_t {
        const auto it = ck.metadata.find(key);
        if (it == ck.metadata.end()) {
            throw std::runtime_error(path + ": cannot resume: no '" + key +
                                     "' in the checkpoint (a model-only checkpoint?)");
        }
        try {
            return std::stoll(it->second);
        } catch (const std::exception&) {
            throw std::runtime_error(path + ": bad '" + key + "' value '" + it->second + "'");
        }
    };
    r.step = number(kMetaStep);
    r.optimizer_steps = number(kMetaOptimizerSteps);
    for (auto& [name, t] : ck.extra_tensors) {
        if (name == "optim.exp_avg") r.exp_avg = t;
        if (name == "optim.exp_avg_sq") r.exp_avg_sq = t;
        if (name == "train.rng_cpu") r.rng_cpu = t;
    }
    if (!r.exp_avg.defined() || !r.exp_avg_sq.defined()) {
        throw std::runtime_error(path + ": cannot resume: no optimizer state in the checkpoint");
    }
    return r;
}

void check_shape_matches(const ModelConfig& mc, const Dataset& data, const std::string& spec) {
    if (mc.image_height != data.height || mc.image_width != data.width ||
        mc.image_channels != data.channels) {
        throw std::invalid_argument(
            "data set " + spec + " has " + std::to_string(data.height) + "x" +
            std::to_string(data.width) + "x" + std::to_string(data.channels) +
            " images but the model expects " + std::to_string(mc.image_height) + "x" +
            std::to_string(mc.image_width) + "x" + std::to_string(mc.image_channels) +
            " (pick a preset made for this data set)");
    }
}

}  // namespace

std::string checkpoint_path(const std::string& out_dir) {
    return (std::filesystem::path(out_dir) / "checkpoint.safetensors").string();
}
std::string metrics_path(const std::string& out_dir) {
    return (std::filesystem::path(out_dir) / "metrics.jsonl").string();
}

void run_training(const TrainConfig& config, JobContext<TrainSnapshot>& job) {
    config.validate();
    {
        std::error_code ec;
        if (std::filesystem::exists(config.out_dir, ec) &&
            !std::filesystem::is_directory(config.out_dir, ec)) {
            throw std::invalid_argument(config.out_dir +
                                        ": exists and is not a folder (the output folder holds the "
                                        "run's checkpoints and metrics)");
        }
    }
    if (config.threads > 0) at::set_num_threads(config.threads);
    // Under torchrun every process trains on its own GPU (LOCAL_RANK) and a shard of each batch.
    const DistributedEnv env = distributed_env();
    auto device = pick_device(config.device);
    if (env.launched() && device.is_cuda()) device = at::Device(at::kCUDA, env.local_rank);
    std::optional<c10::DeviceGuard> device_guard;
    if (device.is_cuda()) device_guard.emplace(device);
    const int64_t B = config.batch_size;  // the global batch, over all processes
    if (B % env.world_size != 0) {
        throw std::invalid_argument("--batch " + std::to_string(B) + " is not a multiple of the " +
                                    std::to_string(env.world_size) + " processes");
    }
    const int64_t local_batch = B / env.world_size;

    TrainSnapshot snap;
    snap.status = "loading data";
    job.publish(snap);
    const auto spec = parse_dataset_spec(config.data);
    const Dataset train_set = load_dataset(spec, Split::Train, config.train_limit);
    const Dataset test_set = load_dataset(spec, Split::Test, config.eval_limit);
    const auto comm = Communicator::connect(env, device);
    const bool root = comm->is_root();

    Resumed resumed;
    PixelTransformer model{nullptr};
    if (!config.resume.empty()) {
        resumed = load_resume(config.resume);
        model = resumed.model;
    } else {
        auto mc = preset(config.preset, parse_attention_kind(config.attention));
        mc.dropout = config.dropout;
        mc.embed_dropout = config.embed_dropout;
        mc.mlp_dropout = config.mlp_dropout;
        mc.embed_init_std = config.embed_init_std;
        torch::manual_seed(config.seed);
        model = PixelTransformer(mc);
    }
    const auto& mc = model->config();
    check_shape_matches(mc, train_set, config.data);
    const int64_t T = mc.seq_len();
    model->to(device);
    model->train();

    std::vector<at::Tensor> params;
    for (auto& [name, p] : model_tensors(model)) params.push_back(p);
    FlatAdamW optimizer(params);
    // The same seed gives every process the same initial weights; the broadcast makes sure.
    comm->broadcast(optimizer.flat_params(), 0);
    if (resumed.model) {
        optimizer.load_state(resumed.exp_avg.to(device), resumed.exp_avg_sq.to(device),
                             resumed.optimizer_steps);
        if (resumed.rng_cpu.defined()) {
            at::Generator gen = at::detail::getDefaultCPUGenerator();
            std::lock_guard<std::mutex> lock(gen.mutex());
            gen.set_state(resumed.rng_cpu);
        }
    }
    // Each process draws its own dropout masks: the generators are reseeded per rank (and per
    // start step, so a resumed run does not repeat the masks of the first steps).
    if (env.launched()) {
        torch::manual_seed(config.seed * 1000003 + static_cast<uint64_t>(env.rank) * 7919 +
                           static_cast<uint64_t>(resumed.step));
    }

    const int64_t n_train = train_set.size();
    const int64_t total = config.epochs > 0
                              ? static_cast<int64_t>(std::ceil(config.epochs * n_train / B))
                              : config.steps;
    if (resumed.step > total) {
        throw std::invalid_argument("the checkpoint is at step " + std::to_string(resumed.step) +
                                    ", beyond the requested " + std::to_string(total) + " steps");
    }
    const auto train_images = images_tensor(train_set).to(device);
    // Each process evaluates its own contiguous slice of the test set; the sums are added up.
    const auto [test_begin, test_end] = shard_range(test_set.size(), comm->rank(), comm->world_size());
    const auto test_images = images_tensor(test_set).to(device);
    const auto test_shard = test_images.narrow(0, test_begin, test_end - test_begin);
    DataOrder order(n_train, config.seed, comm->rank(), comm->world_size());

    // Only the first process writes: checkpoints, metrics and sample grids.
    std::optional<MetricsLog> metrics;
    if (root) {
        std::error_code ec;
        std::filesystem::create_directories(config.out_dir, ec);
        if (ec) {
            throw std::runtime_error("cannot create the output folder " + config.out_dir + " (" +
                                     ec.message() + ")");
        }
        metrics.emplace(metrics_path(config.out_dir));
    }
    auto log_metrics = [&](const nlohmann::json& record) {
        if (metrics) metrics->write(record);
    };
    const std::string ckpt = checkpoint_path(config.out_dir);
    const bool autocast = device.is_cuda() && config.precision == "bf16";

    int64_t saved_step = -1;
    auto save = [&](int64_t step) {
        saved_step = step;
        if (!root) return;
        Metadata meta = {{kMetaStep, std::to_string(step)},
                         {kMetaTrainConfig, config.to_json()},
                         {kMetaDataset, to_string(spec.kind)},
                         {kMetaOptimizerSteps, std::to_string(optimizer.steps())}};
        NamedTensors extra = {{"optim.exp_avg", optimizer.exp_avg()},
                              {"optim.exp_avg_sq", optimizer.exp_avg_sq()},
                              {"train.rng_cpu", cpu_rng_state()}};
        save_checkpoint(ckpt, model, meta, extra);
        snap.checkpoint = ckpt;
    };

    std::vector<at::Tensor> pending;  // per-step losses not yet read back from the device
    std::vector<at::Tensor> pending_norms;  // their gradient norms before clipping
    int64_t pending_first = resumed.step;
    auto window_start = Clock::now();
    auto run_start = Clock::now();
    int64_t window_steps = 0;

    // Reads back the pending losses and gradient norms in one copy; stops the run at the first
    // non-finite loss.
    auto flush = [&](int64_t step_now, double lr) {
        if (pending.empty()) return;
        auto stacked = at::stack({at::stack(pending).to(at::kFloat),
                                  at::stack(pending_norms).to(at::kFloat)});  // (2, steps)
        // The mean over processes: the loss of the global batch. The norm, of the all-reduced
        // gradient, is the same in every process and stays itself.
        comm->all_reduce_sum(stacked);
        const auto read = stacked.to(at::kCPU).to(at::kDouble) / comm->world_size();
        const auto losses = read[0].contiguous(), norms = read[1];
        const double* l = losses.data_ptr<double>();
        double sum = 0;
        for (int64_t i = 0; i < losses.numel(); ++i) {
            if (!std::isfinite(l[i])) {
                const int64_t bad = pending_first + i + 1;
                const std::string kept =
                    saved_step >= 0 ? "the last good checkpoint is " + ckpt + " (step " +
                                          std::to_string(saved_step) + ")"
                                    : "no checkpoint was written yet";
                log_metrics({{"step", bad}, {"event", "non-finite loss"}});
                throw std::runtime_error("non-finite training loss at step " +
                                         std::to_string(bad) + "; training stopped and " + kept);
            }
            sum += l[i];
        }
        const double mean_norm = norms.mean().item<double>();
        const double clipped =
            config.grad_clip > 0 ? norms.gt(config.grad_clip).to(at::kDouble).mean().item<double>()
                                 : 0.0;
        const double seconds = std::chrono::duration<double>(Clock::now() - window_start).count();
        const double mean_bpd = sum / losses.numel() / std::log(2.0);
        snap.loss_bpd = mean_bpd;
        snap.lr = lr;
        snap.tokens_per_s = seconds > 0 ? window_steps * B * T / seconds : 0;
        snap.loss_curve.push_back({step_now, mean_bpd});
        log_metrics({{"step", step_now},
                       {"loss", sum / losses.numel()},
                       {"bpd", mean_bpd},
                       {"lr", lr},
                       {"grad_norm", mean_norm},
                       {"clipped", clipped},
                       {"tokens_per_s", snap.tokens_per_s}});
        pending.clear();
        pending_norms.clear();
        pending_first = step_now;
        window_start = Clock::now();
        window_steps = 0;
    };

    auto evaluate_now = [&](int64_t step_now) {
        snap.status = "evaluating at step " + std::to_string(step_now);
        job.publish(snap);
        auto sums = evaluate_nll_sums(model, test_shard, std::max<int64_t>(local_batch, 16));
        comm->all_reduce_sum(sums);
        const auto r = bpd_from_sums(sums, T);
        snap.test_curve.push_back({step_now, r.bpd_all});
        snap.test_curve_pred.push_back({step_now, r.bpd_predicted});
        if (!root) return;
        const auto probe_images = test_images.narrow(0, 0, std::min<int64_t>(8, test_set.size()));
        const auto measures = attention_measures(model, probe_images.to(at::kLong));
        std::vector<double> sink, oldest, top;
        for (const auto& m : measures) {
            sink.push_back(m.sink_mass);
            oldest.push_back(m.oldest_key);
            top.push_back(m.max_weight);
        }
        snap.sink_steps.push_back(step_now);
        snap.sink_mass.push_back(sink);
        log_metrics({{"step", step_now},
                       {"test_bpd", r.bpd_all},
                       {"test_bpd_predicted", r.bpd_predicted},
                       {"test_images", r.images},
                       {"sink_mass", sink},
                       {"oldest_key", oldest},
                       {"max_weight", top}});
        if (config.preview_count > 0) {
            SampleOptions so;
            so.count = config.preview_count;
            so.seed = config.seed + static_cast<uint64_t>(step_now);
            so.stop = &job.stop_flag();
            const auto s = sample(model, so);
            Images preview;
            preview.count = so.count;
            preview.height = mc.image_height;
            preview.width = mc.image_width;
            preview.channels = mc.image_channels;
            preview.filled = s.filled;
            preview.tokens.assign(s.tokens.data_ptr<uint8_t>(),
                                  s.tokens.data_ptr<uint8_t>() + s.tokens.numel());
            if (!s.stopped) {
                write_png_grid((std::filesystem::path(config.out_dir) /
                                ("samples-" + std::to_string(step_now) + ".png"))
                                   .string(),
                               preview);
            }
            snap.preview = std::move(preview);
        }
    };

    snap.progress = {resumed.step, total, 0, 0, "steps"};
    snap.step = resumed.step;
    snap.status = "training";
    job.publish(snap);
    int64_t step = resumed.step;
    double lr = config.lr;
    while (step < total) {
        if (!job.wait_while_paused()) break;
        // Several processes leave together: a stop request counts at the logging steps, where
        // the processes agree on it (a signal from torchrun reaches all of them anyway).
        if (env.launched() ? step % config.log_every == 0 && comm->any(job.stop_requested(), device)
                           : job.stop_requested()) {
            break;
        }
        lr = lr_at(step, total, config.lr, config.min_lr, config.warmup);
        const auto idx = order.batch(step, local_batch);
        const auto x = train_images
                           .index_select(0, at::tensor(idx, at::kLong).to(device))
                           .to(at::kLong);  // (B, T)
        optimizer.zero_grad();
        at::Tensor loss;
        {
            CudaAutocast cast(autocast);
            loss = model->token_nll(x).mean();
        }
        if (step == config.inject_nan_at) loss = loss * std::numeric_limits<double>::quiet_NaN();
        loss.backward();
        if (env.launched()) {
            // One all-reduce over the flat gradient buffer, then the mean over processes.
            comm->all_reduce_sum(optimizer.flat_grad());
            optimizer.flat_grad().div_(comm->world_size());
        }
        pending_norms.push_back(optimizer.clip_grad_norm(config.grad_clip));
        optimizer.step(lr, config.weight_decay);
        pending.push_back(loss.detach());
        ++step;
        ++window_steps;

        const bool last = step == total;
        const bool eval = last || (config.eval_every > 0 && step % config.eval_every == 0);
        const bool keep = last || (config.checkpoint_every > 0 && step % config.checkpoint_every == 0);
        // On the CPU reading the loss back is free, so every step is checked at once (by a lone
        // process: several check the loss they agree on, at the logging steps).
        const bool check_each = !device.is_cuda() && !env.launched();
        if (check_each || eval || keep || step % config.log_every == 0) {
            if (step % config.log_every == 0 || eval || keep) flush(step, lr);
            else if (check_each) {
                const double v = pending.back().item<double>();
                if (!std::isfinite(v)) flush(step, lr);
            }
        }
        const double elapsed = std::chrono::duration<double>(Clock::now() - run_start).count();
        const double rate = (step - resumed.step) / std::max(elapsed, 1e-9);
        snap.step = step;
        snap.progress = {step, total, rate, rate > 0 ? (total - step) / rate : 0, "steps"};
        if (eval) evaluate_now(step);
        if (keep) save(step);
        snap.status = "training";
        job.publish(snap);
    }
    flush(step, lr);
    if (step > resumed.step && saved_step != step) save(step);
    snap.status = step == total ? "finished at step " + std::to_string(step)
                                : "stopped at step " + std::to_string(step);
    if (!snap.test_curve.empty()) {
        snap.status += ", test " + fixed(snap.test_curve.back().value, 4) + " bits/dim";
    }
    job.publish(snap);
}

}  // namespace krause
