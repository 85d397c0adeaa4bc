// AdamW over one flat parameter buffer, with the warm-up + cosine learning-rate schedule.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace krause {

// Moves every parameter into one contiguous buffer (and every gradient into another), so the
// optimiser, clipping and gradient all-reduce are a handful of kernels instead of one per tensor.
// The parameters stay the same autograd leaves; only their storage changes.
class FlatAdamW {
public:
    FlatAdamW(std::vector<at::Tensor> params, double beta1 = 0.9, double beta2 = 0.999,
              double eps = 1e-8);

    void zero_grad() { grad_.zero_(); }
    // Scales gradients so their global L2 norm is at most max_norm (0 = off); returns the norm
    // before clipping as a 0-d tensor (no host sync).
    at::Tensor clip_grad_norm(double max_norm);
    // Decoupled weight decay (p -= lr * wd * p), then the bias-corrected Adam update.
    void step(double lr, double weight_decay);

    at::Tensor& flat_params() { return data_; }
    at::Tensor& flat_grad() { return grad_; }
    at::Tensor& exp_avg() { return exp_avg_; }
    at::Tensor& exp_avg_sq() { return exp_avg_sq_; }
    int64_t steps() const { return steps_; }
    // Restores saved moments and step count; shapes must match the flat buffer.
    void load_state(const at::Tensor& exp_avg, const at::Tensor& exp_avg_sq, int64_t steps);

private:
    std::vector<at::Tensor> params_;
    at::Tensor data_, grad_, exp_avg_, exp_avg_sq_;
    double beta1_, beta2_, eps_;
    int64_t steps_ = 0;
};

// Linear warm-up from 0 over warmup_steps, then cosine from peak to min_lr at total_steps.
// `step` counts from 0 (the first update uses lr_at(0)).
double lr_at(int64_t step, int64_t total_steps, double peak, double min_lr, double warmup_frac);

}  // namespace krause
