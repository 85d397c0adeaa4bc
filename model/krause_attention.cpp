// Krause attention on ATen: the blocked O(T*W) path, the dense reference, and probe weights.
#include "model/attention.h"

#include "model/krause_attention_cpu.h"

#include <limits>

#ifdef KRAUSE_WITH_CUDA
#include "model/krause_attention_cuda.h"
#endif

namespace krause {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// Distances are accumulated in fp32 at least: the expanded form cancels badly in bf16.
at::ScalarType distance_type(const at::Tensor& t) {
    return t.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

void check_qkv(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
               const at::Tensor& log_sigma, int64_t window, int64_t top_k) {
    TORCH_CHECK(q.dim() == 4, "krause attention: q must be (B, H, T, D), got ", q.sizes());
    TORCH_CHECK(k.sizes() == q.sizes() && v.sizes() == q.sizes(),
                "krause attention: q, k, v shapes differ: ", q.sizes(), k.sizes(), v.sizes());
    TORCH_CHECK(log_sigma.dim() == 1 && log_sigma.size(0) == q.size(1),
                "krause attention: log_sigma must be (H) with H = ", q.size(1));
    TORCH_CHECK(window >= 1, "krause attention: window must be >= 1, got ", window);
    TORCH_CHECK(top_k >= 1, "krause attention: top_k must be >= 1, got ", top_k);
}

// log_sigma (H) as a factor 1 / (2 sigma^2) broadcastable against a (B, H, ...) tensor of `dims`.
at::Tensor inverse_two_sigma_sq(const at::Tensor& log_sigma, int64_t dims, at::ScalarType type) {
    std::vector<int64_t> shape(dims, 1);
    shape[1] = log_sigma.size(0);
    return (log_sigma.to(type) * -2.0).exp().mul(0.5).view(shape);
}

}  // namespace

at::Tensor krause_scores(const at::Tensor& q, const at::Tensor& k, const at::Tensor& log_sigma) {
    const auto type = distance_type(q);
    const auto qf = q.to(type);
    const auto kf = k.to(type);
    const auto q_sq = qf.pow(2).sum(-1, /*keepdim=*/true);      // (B, H, ..., Q, 1)
    const auto k_sq = kf.pow(2).sum(-1).unsqueeze(-2);          // (B, H, ..., 1, S)
    const auto dot = at::matmul(qf, kf.transpose(-1, -2));      // (B, H, ..., Q, S)
    const auto dist = (q_sq + k_sq - dot * 2.0).clamp_min(0.0);
    return -dist * inverse_two_sigma_sq(log_sigma, dist.dim(), type);
}

at::Tensor krause_decode_step(const at::Tensor& q, const at::Tensor& k_new, const at::Tensor& v_new,
                              at::Tensor& ring_keys, at::Tensor& ring_values,
                              const at::Tensor& position, const at::Tensor& log_sigma,
                              int64_t top_k) {
    TORCH_CHECK(ring_keys.scalar_type() != at::kByte,
                "krause_decode_step: fp8 ring buffers are read by the fused CUDA kernel only");
    const int64_t S = ring_keys.size(2);
    const auto slot = position.remainder(S);  // (1)
    ring_keys.index_copy_(2, slot, k_new.to(ring_keys.scalar_type()));
    ring_values.index_copy_(2, slot, v_new.to(ring_values.scalar_type()));
    // Slots in age order (index_select with a device index: no host sync, so the step stays
    // replayable): age a lives in slot (a + oldest) % S, oldest = (position + 1) % S once the
    // ring has wrapped, else 0. Age a holds a key once a <= position.
    const auto next = position + 1;
    const auto oldest = next.remainder(S) * next.ge(S);
    const auto ages = at::arange(S, position.options());
    const auto slots = (ages + oldest).remainder(S);
    const auto scores = krause_scores(q, ring_keys.index_select(2, slots), log_sigma);  // (B, H, 1, S)
    const auto w = at::softmax(keep_top_k(scores, ages.le(position), top_k), -1);
    return at::matmul(w, ring_values.index_select(2, slots).to(w.scalar_type()));
}

at::Tensor keep_top_k(const at::Tensor& scores, const at::Tensor& valid, int64_t top_k) {
    const auto masked = scores.masked_fill(valid.logical_not(), kNegInf);
    if (top_k >= scores.size(-1)) return masked;
    // The selection is a constant of the backward pass: pick on a detached copy. The K-th
    // largest value is well defined whatever order topk returns equal values in; which of the
    // keys equal to it are kept is decided here, oldest first, and not left to topk.
    const auto m = masked.detach();
    const auto kth = std::get<0>(m.topk(top_k, -1, /*largest=*/true, /*sorted=*/false))
                         .amin(-1, /*keepdim=*/true);
    const auto above = m.gt(kth);
    const auto tie = m.eq(kth).logical_and(valid);
    const auto quota = above.sum(-1, /*keepdim=*/true).neg().add(top_k);  // ties still kept
    const auto keep = above.logical_or(tie.logical_and(tie.cumsum(-1).le(quota)));
    return masked.masked_fill(keep.logical_not(), kNegInf);
}

at::Tensor krause_decode_ring(const at::Tensor& q, const at::Tensor& ring_keys,
                              const at::Tensor& ring_values, int64_t position,
                              const at::Tensor& log_sigma, int64_t top_k) {
    const int64_t S = ring_keys.size(2);
    const int64_t n = std::min(position + 1, S);
    // Slots in age order: the oldest key is in slot 0 until the ring wraps, then in slot
    // (position + 1) % S.
    const int64_t oldest = position + 1 > S ? (position + 1) % S : 0;
    const auto keys = ring_keys.narrow(2, 0, n).roll(-oldest, 2);
    const auto values = ring_values.narrow(2, 0, n).roll(-oldest, 2);
    const auto scores = krause_scores(q, keys, log_sigma);  // (B, H, 1, n)
    const auto all = at::ones({1}, scores.options().dtype(at::kBool));
    const auto w = at::softmax(keep_top_k(scores, all, top_k), -1);
    return at::matmul(w, values.to(w.scalar_type()));
}

namespace {

// Queries in blocks of Q = W against the keys from W - 1 before a block's first query to its
// last, L = Q + W - 1 of them: the scores (B, H, nb, Q, L), which of them lie in their query's
// causal window, and the value rows of each block.
struct WindowBlocks {
    at::Tensor scores, valid, v_blocks;
    int64_t T_padded;
};

WindowBlocks window_blocks(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           const at::Tensor& log_sigma, int64_t window) {
    const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3);
    const int64_t w = std::min(window, T);
    const int64_t Q = w;
    const int64_t n_blocks = (T + Q - 1) / Q;
    const int64_t L = Q + w - 1;
    const int64_t T_padded = n_blocks * Q;

    auto pad_keys = [&](const at::Tensor& x) {  // (B, H, w - 1 + T_padded, D)
        return at::constant_pad_nd(x, {0, 0, w - 1, T_padded - T});
    };
    const auto q_blocks =
        at::constant_pad_nd(q, {0, 0, 0, T_padded - T}).view({B, H, n_blocks, Q, D});
    const auto k_blocks = pad_keys(k).unfold(2, L, Q).transpose(-1, -2);  // (B, H, nb, L, D)
    const auto v_blocks = pad_keys(v).unfold(2, L, Q).transpose(-1, -2);  // (B, H, nb, L, D)

    const auto idx_opts = q.options().dtype(at::kLong);
    const auto block = at::arange(n_blocks, idx_opts).view({n_blocks, 1, 1});
    const auto query = block * Q + at::arange(Q, idx_opts).view({1, Q, 1});          // i
    const auto key = block * Q + at::arange(L, idx_opts).view({1, 1, L}) - (w - 1);   // j
    const auto valid = key.ge(0).logical_and(key.le(query)).logical_and(key.gt(query - window));
    return {krause_scores(q_blocks, k_blocks, log_sigma), valid, v_blocks, T_padded};
}

}  // namespace

at::Tensor krause_attention_windowed(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                     const at::Tensor& log_sigma, int64_t window, int64_t top_k) {
    check_qkv(q, k, v, log_sigma, window, top_k);
    const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3);
    const WindowBlocks w = window_blocks(q, k, v, log_sigma, window);
    const auto weights = at::softmax(keep_top_k(w.scores, w.valid, top_k), -1);
    const auto out = at::matmul(weights, w.v_blocks.to(weights.scalar_type()));  // (B, H, nb, Q, D)
    return out.reshape({B, H, w.T_padded, D}).narrow(2, 0, T).to(v.scalar_type());
}

at::Tensor krause_kth_gap(const at::Tensor& q, const at::Tensor& k, const at::Tensor& log_sigma,
                          int64_t window, int64_t top_k) {
    check_qkv(q, k, k, log_sigma, window, top_k);
    const int64_t B = q.size(0), H = q.size(1), T = q.size(2);
    const WindowBlocks w = window_blocks(q, k, k, log_sigma, window);
    const auto masked = w.scores.masked_fill(w.valid.logical_not(), kNegInf);
    const int64_t L = masked.size(-1);
    if (top_k >= L) {
        return at::full({B, H, T}, std::numeric_limits<double>::infinity(), masked.options());
    }
    const auto top = std::get<0>(masked.topk(top_k + 1, -1, /*largest=*/true, /*sorted=*/true));
    const auto kth = top.select(-1, top_k - 1), next = top.select(-1, top_k);  // (B, H, nb, Q)
    auto gap = (kth - next) / kth.abs().clamp_min(1.0);
    // inf where the window holds K keys or fewer (then next, or both, are -inf): no choice.
    gap = gap.masked_fill(next.isinf(), std::numeric_limits<double>::infinity());
    return gap.reshape({B, H, w.T_padded}).narrow(2, 0, T);
}

at::Tensor krause_attention_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                      const at::Tensor& log_sigma, int64_t window, int64_t top_k) {
    check_qkv(q, k, v, log_sigma, window, top_k);
    const int64_t H = q.size(1), T = q.size(2);
    const auto type = distance_type(q);
    // Plain differences, no expanded form: this is the formula as written.
    const auto diff = q.to(type).unsqueeze(3) - k.to(type).unsqueeze(2);  // (B, H, T, T, D)
    const auto sigma_sq = (log_sigma.to(type) * 2.0).exp().view({1, H, 1, 1});
    const auto scores = -diff.pow(2).sum(-1) / (sigma_sq * 2.0);        // (B, H, T, T)

    const auto idx_opts = q.options().dtype(at::kLong);
    const auto i = at::arange(T, idx_opts).view({T, 1});
    const auto j = at::arange(T, idx_opts).view({1, T});
    const auto in_window = j.le(i).logical_and(j.gt(i - window));
    const auto weights = at::softmax(keep_top_k(scores, in_window, top_k), -1);
    return at::matmul(weights, v.to(type)).to(v.scalar_type());
}

at::Tensor krause_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& log_sigma, int64_t window, int64_t top_k,
                            const KernelOptions& kernels) {
    const auto path = krause_path(kernels, q, window);
    if (const auto loops = cpu_loops_of(path)) {
        check_qkv(q, k, v, log_sigma, window, top_k);
        return krause_attention_cpu(q, k, v, log_sigma, window, top_k, *loops);
    }
#ifdef KRAUSE_WITH_CUDA
    if (path != KrausePath::Aten) {
        return krause_attention_cuda(q, k, v, log_sigma, window, top_k,
                                     path == KrausePath::FusedTensorCores);
    }
#endif
    return krause_attention_windowed(q, k, v, log_sigma, window, top_k);
}

std::array<at::Tensor, 3> unpack_qkv(const at::Tensor& qkv, int64_t heads) {
    TORCH_CHECK(qkv.dim() == 3 && heads >= 1 && qkv.size(2) % (3 * heads) == 0,
                "unpack_qkv: qkv must be (B, T, 3 * H * D) with H = ", heads, ", got ",
                qkv.sizes());
    const int64_t B = qkv.size(0), T = qkv.size(1), D = qkv.size(2) / (3 * heads);
    const auto x = qkv.reshape({B, T, 3, heads, D});
    return {x.select(2, 0).transpose(1, 2), x.select(2, 1).transpose(1, 2),
            x.select(2, 2).transpose(1, 2)};
}

at::Tensor merge_heads(const at::Tensor& x) {
    return x.transpose(1, 2).reshape({x.size(0), x.size(2), x.size(1) * x.size(3)});
}

at::Tensor krause_attention_packed(const at::Tensor& qkv, int64_t heads,
                                   const at::Tensor& log_sigma, int64_t window, int64_t top_k,
                                   const KernelOptions& kernels) {
    const auto parts = unpack_qkv(qkv, heads);
    const auto path = krause_path(kernels, parts[0], window);
    if (const auto loops = cpu_loops_of(path)) {
        check_qkv(parts[0], parts[1], parts[2], log_sigma, window, top_k);
        // Heads last: merging them is a view.
        return merge_heads(krause_attention_cpu(parts[0], parts[1], parts[2], log_sigma, window,
                                                top_k, *loops));
    }
#ifdef KRAUSE_WITH_CUDA
    if (path != KrausePath::Aten) {
        return krause_attention_packed_cuda(qkv, heads, log_sigma, window, top_k,
                                            path == KrausePath::FusedTensorCores);
    }
#endif
    return merge_heads(
        krause_attention_windowed(parts[0], parts[1], parts[2], log_sigma, window, top_k));
}

at::Tensor krause_weights(const at::Tensor& q, const at::Tensor& k, const at::Tensor& log_sigma,
                          int64_t q_begin, int64_t window, int64_t top_k, at::Tensor* kept) {
    const int64_t Q = q.size(2), S = q_begin + Q;
    TORCH_CHECK(k.size(2) >= S, "krause_weights: need ", S, " keys, got ", k.size(2));
    const auto scores = krause_scores(q, k.narrow(2, 0, S), log_sigma);  // (B, H, Q, S)
    const auto idx_opts = q.options().dtype(at::kLong);
    const auto i = at::arange(q_begin, S, idx_opts).view({Q, 1});
    const auto j = at::arange(S, idx_opts).view({1, S});
    const auto valid = j.le(i).logical_and(j.gt(i - window));
    const auto selected = keep_top_k(scores, valid, top_k);
    if (kept) *kept = selected.isfinite();
    return at::softmax(selected, -1).to(at::kFloat);
}

}  // namespace krause
