// Token-by-token decoding: one attention step per kind against its cache.
#include "model/attention.h"
#include "model/krause_attention_cpu.h"
#include "model/transformer.h"
#ifdef KRAUSE_WITH_CUDA
#include "model/krause_attention_cuda.h"
#endif

#include <torch/version.h>

#include <cmath>
#include <tuple>

namespace krause {

LayerCache AttentionImpl::empty_cache(int64_t batch, const at::TensorOptions& options,
                                      bool fp8_rings) const {
    const int64_t H = config_.n_heads, D = config_.head_dim();
    LayerCache cache;
    {
        torch::NoGradGuard no_grad;
        auto [weight, bias] = qkv_parameters();
        cache.qkv_weight = std::move(weight);
        cache.qkv_bias = std::move(bias);
    }
    switch (config_.attention) {
        case AttentionKind::Krause: {
            const int64_t W = std::min(config_.window, config_.seq_len());
            const auto ring = fp8_rings ? options.dtype(at::kByte) : options;  // 0: fp8 +0.0
            cache.keys = at::zeros({batch, H, W, D}, ring);
            cache.values = at::zeros({batch, H, W, D}, ring);
#ifdef KRAUSE_WITH_CUDA
            // Where step_at runs the fused step and it reads key norms.
            if (krause_decode_fused(kernels, at::empty({0}, options)) &&
                krause_decode_uses_key_norms(ring.dtype().toScalarType(), D)) {
                cache.key_norms = at::zeros({batch, H, W}, options.dtype(at::kFloat));
            }
#endif
            break;
        }
        case AttentionKind::Softmax:
            cache.keys = at::zeros({batch, H, config_.seq_len(), D}, options);
            cache.values = at::zeros({batch, H, config_.seq_len(), D}, options);
            break;
        case AttentionKind::Linear:
            cache.state = at::zeros({batch, H, D, D}, options.dtype(at::kFloat));
            cache.norm = at::zeros({batch, H, D}, options.dtype(at::kFloat));
            break;
    }
    return cache;
}

std::array<at::Tensor, 3> AttentionImpl::step_qkv(const at::Tensor& x,
                                                  const LayerCache& cache) const {
    return unpack_qkv(project(x, cache.qkv_weight, cache.qkv_bias, kernels), config_.n_heads);
}

at::Tensor AttentionImpl::step(const at::Tensor& x, LayerCache& cache, int64_t position) {
    const auto [q, k, v] = step_qkv(x, cache);  // (B, H, 1, D) each
    at::Tensor out;  // (B, H, 1, D)
    switch (config_.attention) {
        case AttentionKind::Krause: {
            TORCH_CHECK(cache.keys.scalar_type() != at::kByte,
                        "fp8 ring buffers are decoded with the position on the device only");
            const int64_t W = cache.keys.size(2);
            const int64_t slot = position % W;
            cache.keys.narrow(2, slot, 1).copy_(k);
            cache.values.narrow(2, slot, 1).copy_(v);
            // Keys stored here have no norms: a later step_at on this cache forms its
            // distances directly.
            cache.key_norms.reset();
            const DecodePath path = krause_decode_path(kernels, q);
            if (const auto loops = cpu_loops_of(path)) {
                out = krause_decode_ring_cpu(q, cache.keys, cache.values, position, log_sigma,
                                             config_.top_k, *loops);
                break;
            }
#ifdef KRAUSE_WITH_CUDA
            if (path == DecodePath::Fused) {
                out = krause_decode_cuda(q, cache.keys, cache.values, position, log_sigma,
                                         config_.top_k, kernels.decode_warps);
                break;
            }
#endif
            out = krause_decode_ring(q, cache.keys, cache.values, position, log_sigma,
                                     config_.top_k);
            break;
        }
        case AttentionKind::Softmax: {
            cache.keys.narrow(2, position, 1).copy_(k);
            cache.values.narrow(2, position, 1).copy_(v);
            const auto keys = cache.keys.narrow(2, 0, position + 1);
            const auto type = q.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
            const auto scores = at::matmul(q.to(type), keys.to(type).transpose(-1, -2)) /
                                std::sqrt(static_cast<double>(q.size(3)));
            const auto w = at::softmax(scores, -1);
            out = at::matmul(w, cache.values.narrow(2, 0, position + 1).to(type));
            break;
        }
        case AttentionKind::Linear: out = linear_step(q, k, v, cache); break;
    }
    return project(out_proj, merge_heads(out.to(x.scalar_type())), kernels);
}

at::Tensor AttentionImpl::step_at(const at::Tensor& x, LayerCache& cache,
                                  const at::Tensor& position) {
    if (config_.attention == AttentionKind::Krause &&
        cpu_loops_of(krause_decode_path(kernels, x))) {
        // On the CPU the position is read without a wait: the host-position step does the rest.
        return step(x, cache, position.item<int64_t>());
    }
    const auto [q, k, v] = step_qkv(x, cache);  // (B, H, 1, D) each
    at::Tensor out;  // (B, H, 1, D)
    switch (config_.attention) {
        case AttentionKind::Krause: {
#ifdef KRAUSE_WITH_CUDA
            if (krause_decode_fused(kernels, q)) {
                out = krause_decode_step_cuda(q, k, v, cache.keys, cache.values, position,
                                              log_sigma, config_.top_k, kernels.decode_warps,
                                              cache.key_norms);
                break;
            }
#endif
            out = krause_decode_step(q, k, v, cache.keys, cache.values, position, log_sigma,
                                     config_.top_k);
            break;
        }
        case AttentionKind::Softmax: {
            cache.keys.index_copy_(2, position, k.to(cache.keys.scalar_type()));
            cache.values.index_copy_(2, position, v.to(cache.values.scalar_type()));
            const int64_t T = cache.keys.size(2);
#if TORCH_VERSION_MAJOR >= 2
            if (q.is_cuda()) {  // PyTorch's fused kernel reads the bf16 cache as it is
                const auto seen = at::arange(T, position.options()).le(position).view({1, 1, 1, T});
                out = at::scaled_dot_product_attention(q.to(cache.keys.scalar_type()), cache.keys,
                                                       cache.values, seen);
                break;
            }
#endif
            const auto type = q.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
            const auto scores = at::matmul(q.to(type), cache.keys.to(type).transpose(-1, -2)) /
                                std::sqrt(static_cast<double>(q.size(3)));  // (B, H, 1, T)
            const auto later = at::arange(T, position.options()).gt(position);
            const auto w = at::softmax(scores.masked_fill(later, -INFINITY), -1);
            out = at::matmul(w, cache.values.to(type));
            break;
        }
        case AttentionKind::Linear: out = linear_step(q, k, v, cache); break;
    }
    return project(out_proj, merge_heads(out.to(x.scalar_type())), kernels);
}

at::Tensor AttentionImpl::linear_step(const at::Tensor& q, const at::Tensor& k,
                                      const at::Tensor& v, LayerCache& cache) const {
    const auto pq = linear_feature_map(q.to(cache.state.scalar_type()));  // (B, H, 1, D)
    const auto pk = linear_feature_map(k.to(cache.state.scalar_type()));
    cache.state.add_(at::matmul(pk.transpose(-1, -2), v.to(cache.state.scalar_type())));
    cache.norm.add_(pk.squeeze(2));
    const auto num = at::matmul(pq, cache.state);                                // (B, H, 1, D)
    const auto den = (pq.squeeze(2) * cache.norm).sum(-1).view({q.size(0), q.size(1), 1, 1});
    return num / (den + kLinearEps);
}

DecodeState PixelTransformerImpl::start_decode(int64_t batch, bool fp8_rings) {
    TORCH_CHECK(batch >= 1, "start_decode: batch must be >= 1");
    TORCH_CHECK(!fp8_rings || krause_decode_fused(kernels_, pos_emb),
                "start_decode: fp8 ring buffers need the model on a GPU with the fused CUDA "
                "kernels");
    DecodeState state;
    state.batch = batch;
    const auto options = pos_emb.options();
    for (size_t i = 0; i < blocks->size(); ++i) {
        state.layers.push_back(block(i)->attn->empty_cache(batch, options, fp8_rings));
    }
    return state;
}

at::Tensor PixelTransformerImpl::decode_step(DecodeState& state, const at::Tensor& tokens) {
    const int64_t p = state.position;
    TORCH_CHECK(p < config_.seq_len() - 1, "decode_step: sequence already complete");
    TORCH_CHECK(tokens.dim() == 1 && tokens.size(0) == state.batch,
                "decode_step: tokens must be (", state.batch, ")");
    auto h = (tok_emb->forward(tokens.to(at::kLong)) + pos_emb.select(0, p)).unsqueeze(1);
    auto normed = normalize(norm_before(0), h, kernels_);
    for (size_t i = 0; i < blocks->size(); ++i) {
        std::tie(h, normed) = block(i)->step(h, normed, state.layers[i], p, norm_before(i + 1));
    }
    state.position = p + 1;
    return project(head, normed, kernels_).squeeze(1);  // (B, 256)
}

at::Tensor PixelTransformerImpl::decode_step_at(DecodeState& state, const at::Tensor& tokens,
                                                const at::Tensor& position) {
    TORCH_CHECK(tokens.dim() == 1 && tokens.size(0) == state.batch,
                "decode_step_at: tokens must be (", state.batch, ")");
    TORCH_CHECK(position.dim() == 1 && position.numel() == 1 &&
                    position.scalar_type() == at::kLong && position.device() == pos_emb.device(),
                "decode_step_at: position must be a (1) int64 tensor on the model's device");
    auto h = (tok_emb->forward(tokens.to(at::kLong)) + pos_emb.index_select(0, position))
                 .unsqueeze(1);  // (B, 1, d)
    auto normed = normalize(norm_before(0), h, kernels_);
    for (size_t i = 0; i < blocks->size(); ++i) {
        std::tie(h, normed) =
            block(i)->step_at(h, normed, state.layers[i], position, norm_before(i + 1));
    }
    return project(head, normed, kernels_).squeeze(1);  // (B, 256)
}

}  // namespace krause
