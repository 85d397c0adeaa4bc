// Bits per dimension of a model on a set of images, over all T sub-pixels and over the T-1
// the network predicts.
#pragma once

#include "model/transformer.h"
#include "data/dataset.h"
#include "training/engine.h"

#include <atomic>
#include <functional>

namespace krause {

// images: (N, T) uint8 on any device. Runs in eval mode without gradients, in batches.
// progress(done, total) after each batch; stops early (result covers what was done) on stop.
EvalResult evaluate_bpd(PixelTransformer& model, const at::Tensor& images, int64_t batch_size,
                        const std::function<void(int64_t, int64_t)>& progress = {},
                        const std::atomic<bool>* stop = nullptr);

// The sums behind the figures above, as a (3,) fp64 tensor on the model's device: nats over all
// T sub-pixels, nats over the T-1 predicted ones, and the number of images. Sums of several
// processes' shards add up to the sums of the whole set.
at::Tensor evaluate_nll_sums(PixelTransformer& model, const at::Tensor& images, int64_t batch_size,
                             const std::function<void(int64_t, int64_t)>& progress = {},
                             const std::atomic<bool>* stop = nullptr);
EvalResult bpd_from_sums(const at::Tensor& sums, int64_t seq_len);

// A data set's images as a (N, T) uint8 CPU tensor that owns its memory.
at::Tensor images_tensor(const Dataset& dataset);

// The device named by "auto" | "cpu" | "cuda"; throws when CUDA is asked for but absent.
at::Device pick_device(const std::string& name);

}  // namespace krause
