// Bits per dimension of a model on a set of images, over all T sub-pixels and over the T-1
// the network predicts.
#pragma once

#include "model/transformer.h"
#include "training/dataset.h"
#include "training/engine.h"

#include <atomic>
#include <functional>

namespace krause {

// images: (N, T) uint8 on any device. Runs in eval mode without gradients, in batches.
// progress(done, total) after each batch; stops early (result covers what was done) on stop.
EvalResult evaluate_bpd(PixelTransformer& model, const at::Tensor& images, int64_t batch_size,
                        const std::function<void(int64_t, int64_t)>& progress = {},
                        const std::atomic<bool>* stop = nullptr);

// A data set's images as a (N, T) uint8 CPU tensor that owns its memory.
at::Tensor images_tensor(const Dataset& dataset);

// The device named by "auto" | "cpu" | "cuda"; throws when CUDA is asked for but absent.
at::Device pick_device(const std::string& name);

}  // namespace krause
