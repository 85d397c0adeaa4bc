// A training run's checkpoint: the model plus what resuming needs (the step, the optimizer's
// moments and the CPU generator), written and read back by the trainer.
#pragma once

#include "model/transformer.h"
#include "data/dataset.h"
#include "training/optimizer.h"
#include "training/train_config.h"

#include <ATen/ATen.h>

#include <cstdint>
#include <string>

namespace krause {

struct ResumeState {
    PixelTransformer model{nullptr};
    int64_t step = 0;
    int64_t optimizer_steps = 0;
    at::Tensor exp_avg, exp_avg_sq, rng_cpu;
};

// Reads a checkpoint written by save_run_checkpoint; throws naming the file when it lacks the
// training state (a model-only checkpoint) or holds a malformed number.
ResumeState load_resume_state(const std::string& path);

// Puts the saved moments into `optimizer` (on its device) and the CPU generator where it was.
void apply_resume_state(const ResumeState& state, FlatAdamW& optimizer, at::Device device);

// Writes the model, the run's options and its training state atomically to `path`.
void save_run_checkpoint(const std::string& path, PixelTransformer& model,
                         const TrainConfig& config, DatasetKind dataset, int64_t step,
                         FlatAdamW& optimizer);

}  // namespace krause
