// A rough duration of a training run before it starts, so that a front end can warn about a run
// that would take hours on the CPU. Torch-free, for the GUI.
#pragma once

#include "training/train_config.h"

#include <cstdint>
#include <string>

namespace krause {

struct TrainEstimate {
    int64_t steps = 0;
    double seconds_per_step = 0;
    double seconds = 0;
    bool on_cpu = true;
    int threads = 1;
};

// From the model's size (the preset with the model options applied), the batch, the image count
// of the data set kind (or train_limit) and the CPU's cores (with a time budget: its length, and
// the steps that fit in it); throws std::invalid_argument for an unknown preset or data set kind.
TrainEstimate estimate_training(const TrainConfig& config);

// Multiply-adds of one training step (forward and backward) of `config`'s model.
double training_step_flops(const TrainConfig& config);

}  // namespace krause
