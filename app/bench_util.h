// Timing, memory and FLOP helpers for krause bench.
#pragma once

#include "model/config.h"

#include <ATen/ATen.h>

#include <functional>
#include <string>

namespace krause::cli {

// Median wall time in ms of `fn` over `repeats` runs after `warmup` untimed runs; on a GPU each
// run is bracketed by CUDA events on the current stream.
double median_ms(int repeats, int warmup, bool cuda, const std::function<void()>& fn);

// Median time in ms of one run of `fn` queued behind others on a GPU, as a training step queues
// its work: each of `repeats` timed batches of kQueuedRuns back-to-back runs follows one untimed
// run, so the GPU is busy when the batch's first event is recorded and the host's work before
// each launch overlaps the GPU's (median_ms starts each run on an idle GPU, which counts it).
// GPU only.
constexpr int kQueuedRuns = 5;
double queued_median_ms(int repeats, const std::function<void()>& fn);

void reset_peak_memory(const at::Device& device);
double peak_memory_gib(const at::Device& device);  // 0 on the CPU
std::string device_name(const at::Device& device);
// Dense bf16 tensor-core peak of the GPU in FLOP/s, 0 when unknown (or a CPU).
double peak_bf16_flops(const at::Device& device);
std::string today();

// Model FLOPs of one training step per image (forward + backward = 3 x forward): the matrix
// products of projections, MLP and head, plus the attention's own products.
double training_flops_per_image(const ModelConfig& config);

}  // namespace krause::cli
