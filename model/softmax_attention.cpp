// Causal scaled-dot-product attention: the baseline of KRAUSE.md, and its probe weights.
#include "model/attention.h"

#include <torch/version.h>

#include <cmath>
#include <limits>

namespace krause {
namespace {

at::Tensor causal_scores(const at::Tensor& q, const at::Tensor& k, int64_t q_begin) {
    const int64_t Q = q.size(2), S = k.size(2);
    const auto type = q.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
    const auto scores = at::matmul(q.to(type), k.to(type).transpose(-1, -2)) /
                        std::sqrt(static_cast<double>(q.size(3)));  // (B, H, Q, S)
    const auto idx_opts = q.options().dtype(at::kLong);
    const auto future = at::arange(S, idx_opts).view({1, S}).gt(
        at::arange(q_begin, q_begin + Q, idx_opts).view({Q, 1}));
    return scores.masked_fill(future, -std::numeric_limits<double>::infinity());
}

}  // namespace

at::Tensor softmax_attention_reference(const at::Tensor& q, const at::Tensor& k,
                                       const at::Tensor& v) {
    TORCH_CHECK(q.dim() == 4 && k.sizes() == q.sizes() && v.sizes() == q.sizes(),
                "softmax attention: q, k, v must share a (B, H, T, D) shape");
    const auto weights = at::softmax(causal_scores(q, k, 0), -1);
    return at::matmul(weights, v.to(weights.scalar_type())).to(v.scalar_type());
}

at::Tensor softmax_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
#if TORCH_VERSION_MAJOR >= 2
    // PyTorch's fused kernels (flash / memory-efficient) on GPU; the math path elsewhere.
    if (q.is_cuda()) {
        return at::scaled_dot_product_attention(q, k, v, {}, 0.0, /*is_causal=*/true);
    }
#endif
    return softmax_attention_reference(q, k, v);
}

at::Tensor softmax_weights(const at::Tensor& q, const at::Tensor& k, int64_t q_begin) {
    const int64_t S = q_begin + q.size(2);
    return at::softmax(causal_scores(q, k.narrow(2, 0, S), q_begin), -1).to(at::kFloat);
}

}  // namespace krause
