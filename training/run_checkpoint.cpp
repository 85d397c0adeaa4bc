// Where a run keeps its files, and its checkpoint: the model's safetensors file with the step, the
// options, the optimizer's moments and the CPU generator's state beside the weights.
#include "training/run_checkpoint.h"

#include "model/checkpoint.h"
#include "training/trainer.h"

#include <ATen/CPUGeneratorImpl.h>

#include <filesystem>
#include <mutex>
#include <stdexcept>

namespace krause {
namespace {

at::Tensor cpu_rng_state() {
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    return gen.get_state();
}

void set_cpu_rng_state(const at::Tensor& state) {
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(state);
}

}  // namespace

std::string checkpoint_path(const std::string& out_dir) {
    return (std::filesystem::path(out_dir) / "checkpoint.safetensors").string();
}
std::string metrics_path(const std::string& out_dir) {
    return (std::filesystem::path(out_dir) / "metrics.jsonl").string();
}

ResumeState load_resume_state(const std::string& path) {
    auto ck = load_checkpoint(path);
    ResumeState r;
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

void apply_resume_state(const ResumeState& state, FlatAdamW& optimizer, at::Device device) {
    optimizer.load_state(state.exp_avg.to(device), state.exp_avg_sq.to(device),
                         state.optimizer_steps);
    if (state.rng_cpu.defined()) set_cpu_rng_state(state.rng_cpu);
}

void save_run_checkpoint(const std::string& path, PixelTransformer& model,
                         const TrainConfig& config, DatasetKind dataset, int64_t step,
                         FlatAdamW& optimizer) {
    const Metadata meta = {{kMetaStep, std::to_string(step)},
                           {kMetaTrainConfig, config.to_json()},
                           {kMetaDataset, to_string(dataset)},
                           {kMetaOptimizerSteps, std::to_string(optimizer.steps())}};
    const NamedTensors extra = {{"optim.exp_avg", optimizer.exp_avg()},
                                {"optim.exp_avg_sq", optimizer.exp_avg_sq()},
                                {"train.rng_cpu", cpu_rng_state()}};
    save_checkpoint(path, model, meta, extra);
}

}  // namespace krause
