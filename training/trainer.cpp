// The training loop behind `krause train` and the studio's Train panel: a TrainingRun holds one
// run's state; setup, the step, evaluation and checkpointing are its methods.
#include "training/trainer.h"

#include "model/checkpoint.h"
#include "model/dynamics.h"
#include "model/probe.h"
#include "model/sampler.h"
#include "training/autocast.h"
#include "training/data_order.h"
#include "training/distributed.h"
#include "training/evaluate.h"
#include "training/metrics.h"
#include "training/optimizer.h"
#include "training/options.h"
#include "training/run_checkpoint.h"
#include "training/threads.h"

#include <c10/core/DeviceGuard.h>
#include <torch/nn/module.h>
#include <torch/utils.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>

namespace krause {
namespace {

using Clock = std::chrono::steady_clock;

// Tokens closer than this fraction of their layer's median pairwise distance count as one
// cluster in the measures recorded at each evaluation.
constexpr double kTrainingClusterEps = 0.5;

// Timing the steps for a time budget: untimed steps first (allocations, kernel choices), then
// steps until both bounds are passed, or a twentieth of the budget is spent, or the cap.
constexpr int kUntimedSteps = 2;
constexpr int kMinTimedSteps = 3;
constexpr double kMinTimedSeconds = 2.0;
constexpr int kMaxTimedSteps = 200;

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

// One run, from its options to its last checkpoint. Under torchrun every process holds one and
// trains on its own GPU (LOCAL_RANK) and a shard of each batch; only the first process writes
// (checkpoints, metrics, sample grids). The members are in the order setup makes them.
class TrainingRun {
public:
    TrainingRun(const TrainConfig& config, JobContext<TrainSnapshot>& job);
    void run();

private:
    void check_options();
    void choose_device();
    void build_model(const ResumeState& resumed, const Dataset& train_set);
    void build_optimizer(const ResumeState& resumed);
    int64_t steps_in_budget(const ResumeState& resumed, const Dataset& train_set);
    void place_data(const Dataset& train_set, const Dataset& test_set);
    bool stop_asked();
    std::pair<at::Tensor, at::Tensor> optimise(PixelTransformer& model, FlatAdamW& optimizer,
                                               const at::Tensor& x, double lr, bool poison);
    void train_step();
    void after_step();
    void flush();
    void evaluate();
    void preview();
    void save();
    void finish();

    const TrainConfig& config_;
    JobContext<TrainSnapshot>& job_;
    DistributedEnv env_;
    at::Device device_{at::kCPU};
    std::optional<c10::DeviceGuard> device_guard_;
    int64_t batch_ = 0;        // the global batch, over all processes
    int64_t local_batch_ = 0;  // this process's share of it
    TrainSnapshot snap_;
    DatasetSpec spec_;
    std::unique_ptr<Communicator> comm_;
    bool root_ = false;
    PixelTransformer model_{nullptr};
    int64_t seq_len_ = 0;
    std::optional<FlatAdamW> optimizer_;
    int64_t start_step_ = 0, total_ = 0, step_ = 0;
    int64_t budget_steps_ = 0;     // the steps that fit in --minutes (0: no time budget)
    TrainConfig stored_;           // what checkpoints keep: the budget's steps instead of it
    nlohmann::json budget_record_;  // how the budget's steps were timed, for metrics.jsonl
    at::Tensor train_images_, test_images_, test_shard_;
    std::optional<DataOrder> order_;
    std::optional<MetricsLog> metrics_;
    std::string ckpt_;
    bool autocast_ = false;
    int64_t saved_step_ = -1;
    std::vector<at::Tensor> pending_;        // per-step losses not yet read back from the device
    std::vector<at::Tensor> pending_norms_;  // their gradient norms before clipping
    int64_t pending_first_ = 0;
    Clock::time_point window_start_, run_start_;
    int64_t window_steps_ = 0;
    double lr_ = 0;
};

TrainingRun::TrainingRun(const TrainConfig& config, JobContext<TrainSnapshot>& job)
    : config_(config), job_(job) {
    check_options();
    choose_device();
    snap_.status = "loading data";
    job_.publish(snap_);
    spec_ = parse_dataset_spec(config_.data);
    const Dataset train_set = load_dataset(spec_, Split::Train, config_.train_limit);
    const Dataset test_set = load_dataset(spec_, Split::Test, config_.eval_limit);
    snap_.data = "data: " + describe_loaded(spec_, train_set.size(), test_set.size(),
                                            config_.train_limit, config_.eval_limit);
    comm_ = Communicator::connect(env_, device_);
    root_ = comm_->is_root();
    const ResumeState resumed =
        config_.resume.empty() ? ResumeState() : load_resume_state(config_.resume);
    // Before the model is made and seeded: the run is then the one --steps would give.
    if (config_.minutes > 0) budget_steps_ = steps_in_budget(resumed, train_set);
    build_model(resumed, train_set);
    build_optimizer(resumed);
    start_step_ = pending_first_ = step_ = resumed.step;
    place_data(train_set, test_set);
    window_start_ = run_start_ = Clock::now();
    lr_ = config_.lr;
}

void TrainingRun::check_options() {
    config_.validate();
    std::error_code ec;
    if (std::filesystem::exists(config_.out_dir, ec) &&
        !std::filesystem::is_directory(config_.out_dir, ec)) {
        throw std::invalid_argument(config_.out_dir +
                                    ": exists and is not a folder (the output folder holds the "
                                    "run's checkpoints and metrics)");
    }
    set_compute_threads(config_.threads);
}

void TrainingRun::choose_device() {
    env_ = distributed_env();
    device_ = krause::pick_device(config_.device);
    if (env_.launched() && device_.is_cuda()) device_ = at::Device(at::kCUDA, env_.local_rank);
    if (device_.is_cuda()) device_guard_.emplace(device_);
    batch_ = config_.batch_size;
    if (batch_ % env_.world_size != 0) {
        throw std::invalid_argument("--batch " + std::to_string(batch_) +
                                    " is not a multiple of the " + std::to_string(env_.world_size) +
                                    " processes");
    }
    local_batch_ = batch_ / env_.world_size;
    autocast_ = device_.is_cuda() && config_.precision == "bf16";
}

void TrainingRun::build_model(const ResumeState& resumed, const Dataset& train_set) {
    if (resumed.model) {
        model_ = resumed.model;
    } else {
        torch::manual_seed(config_.seed);
        model_ = PixelTransformer(model_config(config_));
    }
    check_shape_matches(model_->config(), train_set, config_.data);
    seq_len_ = model_->config().seq_len();
    model_->to(device_);
    model_->train();
}

void TrainingRun::build_optimizer(const ResumeState& resumed) {
    std::vector<at::Tensor> params;
    for (auto& [name, p] : model_tensors(model_)) params.push_back(p);
    optimizer_.emplace(params);
    // The same seed gives every process the same initial weights; the broadcast makes sure.
    comm_->broadcast(optimizer_->flat_params(), 0);
    if (resumed.model) apply_resume_state(resumed, *optimizer_, device_);
    // Each process draws its own dropout masks: the generators are reseeded per rank (and per
    // start step, so a resumed run does not repeat the masks of the first steps).
    if (env_.launched()) {
        torch::manual_seed(config_.seed * 1000003 + static_cast<uint64_t>(env_.rank) * 7919 +
                           static_cast<uint64_t>(resumed.step));
    }
}

void TrainingRun::place_data(const Dataset& train_set, const Dataset& test_set) {
    const int64_t n_train = train_set.size();
    if (budget_steps_ > 0) {
        total_ = budget_steps_;
    } else {
        total_ = config_.epochs > 0
                     ? static_cast<int64_t>(std::ceil(config_.epochs * n_train / batch_))
                     : config_.steps;
    }
    if (start_step_ > total_) {
        throw std::invalid_argument(
            "the checkpoint is at step " + std::to_string(start_step_) + ", beyond the " +
            (budget_steps_ > 0 ? std::to_string(total_) + " steps that fit in --minutes " +
                                     option_text(*find_option("minutes"), config_)
                               : "requested " + std::to_string(total_) + " steps"));
    }
    train_images_ = images_tensor(train_set).to(device_);
    // Each process evaluates its own contiguous slice of the test set; the sums are added up.
    const auto [begin, end] = shard_range(test_set.size(), comm_->rank(), comm_->world_size());
    test_images_ = images_tensor(test_set).to(device_);
    test_shard_ = test_images_.narrow(0, begin, end - begin);
    order_.emplace(n_train, config_.seed, comm_->rank(), comm_->world_size());
    if (root_) {
        std::error_code ec;
        std::filesystem::create_directories(config_.out_dir, ec);
        if (ec) {
            throw std::runtime_error("cannot create the output folder " + config_.out_dir + " (" +
                                     ec.message() + ")");
        }
        metrics_.emplace(metrics_path(config_.out_dir));
    }
    ckpt_ = checkpoint_path(config_.out_dir);
    stored_ = config_;
    if (budget_steps_ > 0) {
        // A resumed run continues the schedule the budget gave, not a newly timed one.
        stored_.steps = budget_steps_;
        stored_.epochs = stored_.minutes = 0;
        if (metrics_) metrics_->write(budget_record_);
    }
}

void TrainingRun::run() {
    snap_.progress = {start_step_, total_, 0, 0, "steps"};
    snap_.step = start_step_;
    snap_.status = "training";
    job_.publish(snap_);
    while (step_ < total_) {
        if (!job_.wait_while_paused() || stop_asked()) break;
        train_step();
        after_step();
    }
    finish();
}

// Several processes leave together: a stop request counts at the logging steps, where the
// processes agree on it (a signal from torchrun reaches all of them anyway).
bool TrainingRun::stop_asked() {
    if (!env_.launched()) return job_.stop_requested();
    return step_ % config_.log_every == 0 && comm_->any(job_.stop_requested(), device_);
}

// With --minutes, the step count comes from the speed of this very model: a throwaway copy (same
// shape, device, precision, batch and processes) takes steps at learning rate 0, and the steps
// that fit in the budget at their mean time are the run's. Every process takes the slowest
// process's time, as the gradient all-reduce makes every step wait for it.
int64_t TrainingRun::steps_in_budget(const ResumeState& resumed, const Dataset& train_set) {
    const ModelConfig mc = resumed.model ? resumed.model->config() : model_config(config_);
    check_shape_matches(mc, train_set, config_.data);
    const double budget = config_.minutes * 60;
    snap_.status = "timing steps for the " + option_text(*find_option("minutes"), config_) +
                   "-minute budget";
    job_.publish(snap_);
    double seconds = 0;
    int timed = 0;
    {
        PixelTransformer model(mc);
        model->to(device_);
        model->train();
        std::vector<at::Tensor> params;
        for (auto& [name, p] : model_tensors(model)) params.push_back(p);
        FlatAdamW optimizer(params);
        // One batch of the first images (cycled when the set is smaller), copied alone: the
        // whole set is made a tensor once, by place_data.
        const int64_t n = train_set.size(), T = train_set.seq_len();
        auto batch = at::empty({local_batch_, T}, at::kByte);
        for (int64_t i = 0; i < local_batch_; ++i) {
            std::memcpy(batch.data_ptr<uint8_t>() + i * T, train_set.image(i % n), T);
        }
        const auto x = batch.to(device_).to(at::kLong);
        at::Tensor loss;
        for (int i = 0; i < kUntimedSteps; ++i) {
            loss = optimise(model, optimizer, x, 0, false).first;
        }
        loss.item<double>();  // waits for the device
        const auto start = Clock::now();
        for (bool done = false; !done;) {
            loss = optimise(model, optimizer, x, 0, false).first;
            ++timed;
            seconds = std::chrono::duration<double>(Clock::now() - start).count();
            // A stop ends the timing too; the run then stops before its first step.
            const bool enough = (timed >= kMinTimedSteps && seconds >= kMinTimedSeconds) ||
                                seconds >= budget / 20 || timed >= kMaxTimedSteps ||
                                job_.stop_requested();
            done = comm_->any(enough, device_);
        }
        loss.item<double>();
        seconds = std::chrono::duration<double>(Clock::now() - start).count();
    }
    auto slowest = at::full({1}, seconds / timed, at::TensorOptions(at::kDouble).device(device_));
    comm_->all_reduce_max(slowest);
    const double per_step = slowest.item<double>();
    const auto steps = static_cast<int64_t>(std::clamp(std::floor(budget / per_step), 1.0, 1e12));
    budget_record_ = {{"event", "steps from the time budget"},
                      {"minutes", config_.minutes},
                      {"seconds_per_step", per_step},
                      {"timed_steps", timed},
                      {"batch", batch_},
                      {"steps", steps}};
    char line[160];
    std::snprintf(line, sizeof line, "%lld steps fit in %s minute%s (%.4g s a step, %d timed)",
                  static_cast<long long>(steps),
                  option_text(*find_option("minutes"), config_).c_str(),
                  config_.minutes == 1 ? "" : "s", per_step, timed);
    snap_.schedule = line;
    return steps;
}

// One optimiser step of `model` on the token batch `x` (B, T): the loss under autocast, its
// gradient, the mean over processes, clipping and the update. `poison` makes the loss NaN (the
// test hook). Returns the loss and the gradient norm before clipping, left on the device.
std::pair<at::Tensor, at::Tensor> TrainingRun::optimise(PixelTransformer& model,
                                                        FlatAdamW& optimizer, const at::Tensor& x,
                                                        double lr, bool poison) {
    optimizer.zero_grad();
    at::Tensor loss;
    {
        CudaAutocast cast(autocast_);
        loss = model->token_nll(x).mean();
    }
    if (poison) loss = loss * std::numeric_limits<double>::quiet_NaN();
    loss.backward();
    if (env_.launched()) {
        // One all-reduce over the flat gradient buffer, then the mean over processes.
        comm_->all_reduce_sum(optimizer.flat_grad());
        optimizer.flat_grad().div_(comm_->world_size());
    }
    auto norm = optimizer.clip_grad_norm(config_.grad_clip);
    optimizer.step(lr, config_.weight_decay);
    return {loss.detach(), norm};
}

void TrainingRun::train_step() {
    lr_ = lr_at(step_, total_, config_.lr, config_.min_lr, config_.warmup);
    const auto idx = order_->batch(step_, local_batch_);
    const auto x = train_images_.index_select(0, at::tensor(idx, at::kLong).to(device_))
                       .to(at::kLong);  // (B, T)
    auto [loss, norm] = optimise(model_, *optimizer_, x, lr_, step_ == config_.inject_nan_at);
    pending_.push_back(loss);
    pending_norms_.push_back(norm);
    ++step_;
    ++window_steps_;
}

void TrainingRun::after_step() {
    const bool last = step_ == total_;
    const bool eval = last || (config_.eval_every > 0 && step_ % config_.eval_every == 0);
    const bool keep =
        last || (config_.checkpoint_every > 0 && step_ % config_.checkpoint_every == 0);
    // On the CPU reading the loss back is free, so every step is checked at once (by a lone
    // process: several check the loss they agree on, at the logging steps).
    const bool check_each = !device_.is_cuda() && !env_.launched();
    if (step_ % config_.log_every == 0 || eval || keep) {
        flush();
    } else if (check_each && !std::isfinite(pending_.back().item<double>())) {
        flush();
    }
    const double elapsed = std::chrono::duration<double>(Clock::now() - run_start_).count();
    const double rate = (step_ - start_step_) / std::max(elapsed, 1e-9);
    snap_.step = step_;
    snap_.progress = {step_, total_, rate, rate > 0 ? (total_ - step_) / rate : 0, "steps"};
    if (eval) evaluate();
    if (keep) save();
    snap_.status = "training";
    job_.publish(snap_);
}

// Reads back the pending losses and gradient norms in one copy; stops the run at the first
// non-finite loss.
void TrainingRun::flush() {
    if (pending_.empty()) return;
    auto stacked = at::stack({at::stack(pending_).to(at::kFloat),
                              at::stack(pending_norms_).to(at::kFloat)});  // (2, steps)
    // The mean over processes: the loss of the global batch. The norm, of the all-reduced
    // gradient, is the same in every process and stays itself.
    comm_->all_reduce_sum(stacked);
    const auto read = stacked.to(at::kCPU).to(at::kDouble) / comm_->world_size();
    const auto losses = read[0].contiguous(), norms = read[1];
    const double* l = losses.data_ptr<double>();
    double sum = 0;
    for (int64_t i = 0; i < losses.numel(); ++i) {
        if (!std::isfinite(l[i])) {
            const int64_t bad = pending_first_ + i + 1;
            const std::string kept = saved_step_ >= 0
                                         ? "the last good checkpoint is " + ckpt_ + " (step " +
                                               std::to_string(saved_step_) + ")"
                                         : "no checkpoint was written yet";
            if (metrics_) metrics_->write({{"step", bad}, {"event", "non-finite loss"}});
            throw std::runtime_error("non-finite training loss at step " + std::to_string(bad) +
                                     "; training stopped and " + kept);
        }
        sum += l[i];
    }
    const double clip = config_.grad_clip;
    const double clipped = clip > 0 ? norms.gt(clip).to(at::kDouble).mean().item<double>() : 0.0;
    const double seconds = std::chrono::duration<double>(Clock::now() - window_start_).count();
    const double mean_bpd = sum / losses.numel() / std::log(2.0);
    snap_.loss_bpd = mean_bpd;
    snap_.lr = lr_;
    snap_.tokens_per_s = seconds > 0 ? window_steps_ * batch_ * seq_len_ / seconds : 0;
    snap_.loss_curve.push_back({step_, mean_bpd});
    if (metrics_) {
        metrics_->write({{"step", step_},
                         {"loss", sum / losses.numel()},
                         {"bpd", mean_bpd},
                         {"lr", lr_},
                         {"grad_norm", norms.mean().item<double>()},
                         {"clipped", clipped},
                         {"tokens_per_s", snap_.tokens_per_s}});
    }
    pending_.clear();
    pending_norms_.clear();
    pending_first_ = step_;
    window_start_ = Clock::now();
    window_steps_ = 0;
}

void TrainingRun::evaluate() {
    snap_.status = "evaluating at step " + std::to_string(step_);
    job_.publish(snap_);
    auto sums = evaluate_nll_sums(model_, test_shard_, std::max<int64_t>(local_batch_, 16));
    comm_->all_reduce_sum(sums);
    const auto r = bpd_from_sums(sums, seq_len_);
    snap_.test_curve.push_back({step_, r.bpd_all});
    snap_.test_curve_pred.push_back({step_, r.bpd_predicted});
    if (!root_) return;
    // Attention and token-state measures on the first evaluation images, one forward pass.
    const auto probe_images = test_images_.narrow(0, 0, std::min<int64_t>(8, test_images_.size(0)));
    DynamicsOptions probe;
    probe.eps_fractions = {kTrainingClusterEps};
    probe.batch_size = probe_images.size(0);
    const auto dynamics = token_dynamics(model_, probe_images.to(at::kLong), probe);
    std::vector<double> sink, oldest, top;
    for (const auto& m : dynamics.attention) {
        sink.push_back(m.sink_mass);
        oldest.push_back(m.oldest_key);
        top.push_back(m.max_weight);
    }
    std::vector<double> cosine, consensus, rank, clusters;
    for (const auto& m : dynamics.states) {
        cosine.push_back(m.cosine);
        consensus.push_back(m.consensus);
        rank.push_back(m.effective_rank);
        clusters.push_back(m.clusters.at(0));
    }
    snap_.sink_steps.push_back(step_);
    snap_.sink_mass.push_back(sink);
    snap_.state_cosine.push_back(cosine);
    snap_.state_consensus.push_back(consensus);
    snap_.state_rank.push_back(rank);
    snap_.state_clusters.push_back(clusters);
    metrics_->write({{"step", step_},
                     {"test_bpd", r.bpd_all},
                     {"test_bpd_predicted", r.bpd_predicted},
                     {"test_images", r.images},
                     {"sink_mass", sink},
                     {"oldest_key", oldest},
                     {"max_weight", top},
                     {"state_cosine", cosine},
                     {"state_consensus", consensus},
                     {"state_effective_rank", rank},
                     {"state_clusters", clusters},
                     {"state_cluster_eps", kTrainingClusterEps}});
    if (config_.preview_count > 0) preview();
}

// Sample images from the model as it is now: shown live, and kept as a PNG grid unless a stop
// cut the sampling short.
void TrainingRun::preview() {
    const auto& mc = model_->config();
    SampleOptions so;
    so.count = config_.preview_count;
    so.seed = config_.seed + static_cast<uint64_t>(step_);
    so.stop = &job_.stop_flag();
    const auto s = sample(model_, so);
    Images images;
    images.count = so.count;
    images.height = mc.image_height;
    images.width = mc.image_width;
    images.channels = mc.image_channels;
    images.filled = s.filled;
    images.tokens.assign(s.tokens.data_ptr<uint8_t>(),
                         s.tokens.data_ptr<uint8_t>() + s.tokens.numel());
    if (!s.stopped) {
        const auto name = "samples-" + std::to_string(step_) + ".png";
        write_png_grid((std::filesystem::path(config_.out_dir) / name).string(), images);
    }
    snap_.preview = std::move(images);
}

// The model with the optimizer's moments and the CPU generator, so a resumed run continues
// exactly where this one is.
void TrainingRun::save() {
    saved_step_ = step_;
    if (!root_) return;
    save_run_checkpoint(ckpt_, model_, stored_, spec_.kind, step_, *optimizer_);
    snap_.checkpoint = ckpt_;
}

void TrainingRun::finish() {
    flush();
    if (step_ > start_step_ && saved_step_ != step_) save();
    snap_.status = step_ == total_ ? "finished at step " + std::to_string(step_)
                                   : "stopped at step " + std::to_string(step_);
    if (!snap_.test_curve.empty()) {
        char bpd[64];
        std::snprintf(bpd, sizeof bpd, "%.4f", snap_.test_curve.back().value);
        snap_.status += ", test " + std::string(bpd) + " bits/dim";
    }
    job_.publish(snap_);
}

}  // namespace

void run_training(const TrainConfig& config, JobContext<TrainSnapshot>& job) {
    TrainingRun(config, job).run();
}

}  // namespace krause
