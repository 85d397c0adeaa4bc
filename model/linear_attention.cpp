// Causal linear attention (phi = elu + 1): chunked prefix sums, the plain reference, probe weights.
#include "model/attention.h"

namespace krause {
namespace {
constexpr int64_t kChunk = 64;

void check_shapes(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
    TORCH_CHECK(q.dim() == 4 && k.sizes() == q.sizes() && v.sizes() == q.sizes(),
                "linear attention: q, k, v must share a (B, H, T, D) shape");
}
}  // namespace

at::Tensor linear_feature_map(const at::Tensor& x) { return at::elu(x) + 1.0; }

at::Tensor linear_attention_reference(const at::Tensor& q, const at::Tensor& k,
                                      const at::Tensor& v) {
    check_shapes(q, k, v);
    const auto type = q.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
    const auto pq = linear_feature_map(q.to(type));
    const auto pk = linear_feature_map(k.to(type));
    const auto S = at::cumsum(pk.unsqueeze(-1) * v.to(type).unsqueeze(-2), 2);  // (B, H, T, D, D)
    const auto z = at::cumsum(pk, 2);                                            // (B, H, T, D)
    const auto num = at::matmul(pq.unsqueeze(-2), S).squeeze(-2);                // (B, H, T, D)
    const auto den = (pq * z).sum(-1, /*keepdim=*/true) + kLinearEps;
    return (num / den).to(v.scalar_type());
}

at::Tensor linear_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
    check_shapes(q, k, v);
    const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3);
    const auto type = q.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
    const int64_t C = std::min(kChunk, T);
    const int64_t n = (T + C - 1) / C;
    // Padding sits after every real query, so causality keeps it out of real outputs.
    auto chunks = [&](const at::Tensor& x) {
        return at::constant_pad_nd(x.to(type), {0, 0, 0, n * C - T}).view({B, H, n, C, D});
    };
    const auto pq = linear_feature_map(chunks(q));  // (B, H, n, C, D)
    const auto pk = linear_feature_map(chunks(k));
    const auto vc = chunks(v);

    const auto causal = at::ones({C, C}, q.options().dtype(at::kBool)).tril();
    const auto a = at::matmul(pq, pk.transpose(-1, -2)).masked_fill(causal.logical_not(), 0.0);
    // State entering each chunk: sums over all earlier chunks (exclusive prefix).
    const auto state = at::matmul(pk.transpose(-1, -2), vc);  // (B, H, n, D, D)
    const auto norm = pk.sum(-2);                             // (B, H, n, D)
    const auto state_in = at::constant_pad_nd(at::cumsum(state, 2).narrow(2, 0, n - 1),
                                              {0, 0, 0, 0, 1, 0});
    const auto norm_in = at::constant_pad_nd(at::cumsum(norm, 2).narrow(2, 0, n - 1), {0, 0, 1, 0});

    const auto num = at::matmul(a, vc) + at::matmul(pq, state_in);             // (B, H, n, C, D)
    const auto den = a.sum(-1, true) + (pq * norm_in.unsqueeze(-2)).sum(-1, true) + kLinearEps;
    return (num / den).reshape({B, H, n * C, D}).narrow(2, 0, T).to(v.scalar_type());
}

at::Tensor linear_weights(const at::Tensor& q, const at::Tensor& k, int64_t q_begin) {
    const int64_t Q = q.size(2), S = q_begin + Q;
    const auto pq = linear_feature_map(q.to(at::kFloat));
    const auto pk = linear_feature_map(k.narrow(2, 0, S).to(at::kFloat));
    const auto idx_opts = q.options().dtype(at::kLong);
    const auto future = at::arange(S, idx_opts).view({1, S}).gt(
        at::arange(q_begin, S, idx_opts).view({Q, 1}));
    const auto raw = at::matmul(pq, pk.transpose(-1, -2)).masked_fill(future, 0.0);  // (B,H,Q,S)
    return raw / (raw.sum(-1, true) + kLinearEps);
}

}  // namespace krause
