// FlatAdamW and the learning-rate schedule.
#include "training/optimizer.h"

#include <torch/csrc/autograd/variable.h>

#include <cmath>
#include <stdexcept>

namespace krause {

FlatAdamW::FlatAdamW(std::vector<at::Tensor> params, double beta1, double beta2, double eps)
    : params_(std::move(params)), beta1_(beta1), beta2_(beta2), eps_(eps) {
    if (params_.empty()) throw std::invalid_argument("FlatAdamW: no parameters");
    int64_t total = 0;
    for (const auto& p : params_) total += p.numel();
    const auto options = params_.front().options().requires_grad(false);
    data_ = at::empty({total}, options);
    grad_ = at::zeros({total}, options);
    int64_t offset = 0;
    for (auto& p : params_) {
        const int64_t n = p.numel();
        auto slot = data_.narrow(0, offset, n);
        slot.copy_(p.detach().reshape({n}));
        p.set_data(slot.view(p.sizes()));
        // Autograd accumulates in place into an existing gradient, keeping it a view of grad_.
        p.mutable_grad() = grad_.narrow(0, offset, n).view(p.sizes());
        offset += n;
    }
    exp_avg_ = at::zeros_like(data_);
    exp_avg_sq_ = at::zeros_like(data_);
}

at::Tensor FlatAdamW::clip_grad_norm(double max_norm) {
    const auto norm = grad_.norm();
    if (max_norm > 0) {
        const auto scale = (max_norm / (norm + 1e-6)).clamp_max(1.0);
        grad_.mul_(scale);
    }
    return norm;
}

void FlatAdamW::step(double lr, double weight_decay) {
    ++steps_;
    const double bias1 = 1.0 - std::pow(beta1_, static_cast<double>(steps_));
    const double bias2 = 1.0 - std::pow(beta2_, static_cast<double>(steps_));
    data_.mul_(1.0 - lr * weight_decay);
    exp_avg_.mul_(beta1_).add_(grad_, 1.0 - beta1_);
    exp_avg_sq_.mul_(beta2_).addcmul_(grad_, grad_, 1.0 - beta2_);
    const auto denom = (exp_avg_sq_.sqrt() / std::sqrt(bias2)).add_(eps_);
    data_.addcdiv_(exp_avg_, denom, -lr / bias1);
}

void FlatAdamW::load_state(const at::Tensor& exp_avg, const at::Tensor& exp_avg_sq, int64_t steps) {
    if (exp_avg.numel() != data_.numel() || exp_avg_sq.numel() != data_.numel()) {
        throw std::invalid_argument("optimizer state does not match the model's " +
                                    std::to_string(data_.numel()) + " parameters");
    }
    exp_avg_.copy_(exp_avg.reshape({-1}));
    exp_avg_sq_.copy_(exp_avg_sq.reshape({-1}));
    steps_ = steps;
}

double lr_at(int64_t step, int64_t total_steps, double peak, double min_lr, double warmup_frac) {
    const int64_t warmup = static_cast<int64_t>(std::floor(warmup_frac * total_steps));
    if (step < warmup) return peak * static_cast<double>(step + 1) / static_cast<double>(warmup);
    const int64_t decay = std::max<int64_t>(1, total_steps - warmup);
    const double progress = std::min(1.0, static_cast<double>(step - warmup) / decay);
    return min_lr + 0.5 * (peak - min_lr) * (1.0 + std::cos(M_PI * progress));
}

}  // namespace krause
