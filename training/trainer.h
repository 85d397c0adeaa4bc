// The training loop: data, model (fresh or resumed), AdamW with warm-up + cosine, evaluation,
// sample grids, metrics and checkpoints, run as the body of a Job.
#pragma once

#include "training/engine.h"
#include "training/job.h"
#include "training/train_config.h"

#include <string>

namespace krause {

// The checkpoint a run keeps in its folder; overwritten atomically, so it is always whole.
std::string checkpoint_path(const std::string& out_dir);
std::string metrics_path(const std::string& out_dir);

// Trains as `config` says, publishing snapshots. Returns normally when done or stopped (a
// stopped run first writes a checkpoint of where it got to); throws with a one-line message on
// bad data, bad options, or a non-finite loss (which keeps the last good checkpoint).
void run_training(const TrainConfig& config, JobContext<TrainSnapshot>& job);

// Metadata keys a training checkpoint adds to the model's own.
constexpr const char* kMetaStep = "step";
constexpr const char* kMetaTrainConfig = "train_config";
constexpr const char* kMetaDataset = "dataset";
constexpr const char* kMetaOptimizerSteps = "optimizer_steps";

}  // namespace krause
