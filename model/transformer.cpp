// The pixel Transformer's modules and full-sequence forward pass.
#include "model/transformer.h"

#include "model/attention.h"

#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/init.h>

#include <cmath>

namespace krause {

namespace nn = torch::nn;

AttentionImpl::AttentionImpl(const ModelConfig& config) : config_(config) {
    const int64_t d = config.d_model;
    q_proj = register_module("q_proj", nn::Linear(d, d));
    k_proj = register_module("k_proj", nn::Linear(d, d));
    v_proj = register_module("v_proj", nn::Linear(d, d));
    out_proj = register_module("out_proj", nn::Linear(d, d));
    if (config.attention == AttentionKind::Krause) {
        log_sigma = register_parameter(
            "log_sigma", at::full({config.n_heads}, std::log(config.init_sigma)));
    }
}

std::array<at::Tensor, 2> AttentionImpl::qkv_parameters() const {
    return {at::cat({q_proj->weight, k_proj->weight, v_proj->weight}),
            at::cat({q_proj->bias, k_proj->bias, v_proj->bias})};
}

at::Tensor AttentionImpl::forward(const at::Tensor& x) {
    // One product of width 3d instead of three; its thirds are the heads' q, k and v.
    const auto [weight, bias] = qkv_parameters();
    const auto qkv = project(x, weight, bias, kernels);  // (B, T, 3d)
    const int64_t H = config_.n_heads;
    if (capture) {
        const auto parts = unpack_qkv(qkv, H);
        captured_q = parts[0].detach();
        captured_k = parts[1].detach();
    }
    at::Tensor out;  // (B, T, d)
    if (config_.attention == AttentionKind::Krause) {
        out = krause_attention_packed(qkv, H, log_sigma, config_.window, config_.top_k, kernels);
    } else {
        const auto parts = unpack_qkv(qkv, H);  // (B, H, T, D) each
        out = merge_heads(config_.attention == AttentionKind::Softmax
                              ? softmax_attention(parts[0], parts[1], parts[2])
                              : linear_attention(parts[0], parts[1], parts[2]));
    }
    return project(out_proj, out, kernels);
}

at::Tensor AttentionImpl::weights(const at::Tensor& q, const at::Tensor& k, int64_t q_begin,
                                  at::Tensor* attended) const {
    if (config_.attention == AttentionKind::Krause) {
        return krause_weights(q, k, log_sigma, q_begin, config_.window, config_.top_k, attended);
    }
    if (attended) {  // every earlier key
        const int64_t Q = q.size(2), S = q_begin + Q;
        const auto opts = q.options().dtype(at::kLong);
        *attended = at::arange(S, opts).view({1, S}).le(at::arange(q_begin, S, opts).view({Q, 1}))
                        .expand({q.size(0), q.size(1), Q, S});
    }
    return config_.attention == AttentionKind::Softmax ? softmax_weights(q, k, q_begin)
                                                       : linear_weights(q, k, q_begin);
}

BlockImpl::BlockImpl(const ModelConfig& config) {
    const int64_t d = config.d_model;
    ln1 = register_module("ln1", nn::LayerNorm(nn::LayerNormOptions({d})));
    attn = register_module("attn", Attention(config));
    ln2 = register_module("ln2", nn::LayerNorm(nn::LayerNormOptions({d})));
    fc1 = register_module("fc1", nn::Linear(d, 4 * d));
    fc2 = register_module("fc2", nn::Linear(4 * d, d));
    drop = register_module("drop", nn::Dropout(config.dropout));
    if (config.mlp_dropout > 0) {
        mlp_drop = register_module("mlp_drop", nn::Dropout(config.mlp_dropout));
    }
}

at::Tensor BlockImpl::mlp(const at::Tensor& x) {
    return project(fc2, at::gelu(project(fc1, x, kernels)), kernels);
}

at::Tensor BlockImpl::forward(const at::Tensor& x) {
    const auto h = x + drop->forward(attn->forward(normalize(ln1, x, kernels)));
    auto m = mlp(normalize(ln2, h, kernels));
    if (mlp_drop) m = mlp_drop->forward(m);
    return h + drop->forward(m);
}

std::pair<at::Tensor, at::Tensor> BlockImpl::step(const at::Tensor& x, const at::Tensor& x_normed,
                                                  LayerCache& cache, int64_t position,
                                                  const nn::LayerNorm& next) {
    return finish_step(x, attn->step(x_normed, cache, position), next);
}

std::pair<at::Tensor, at::Tensor> BlockImpl::step_at(const at::Tensor& x,
                                                     const at::Tensor& x_normed,
                                                     LayerCache& cache, const at::Tensor& position,
                                                     const nn::LayerNorm& next) {
    return finish_step(x, attn->step_at(x_normed, cache, position), next);
}

std::pair<at::Tensor, at::Tensor> BlockImpl::finish_step(const at::Tensor& x, const at::Tensor& a,
                                                         const nn::LayerNorm& next) {
    const auto [h, h_normed] = add_normalize(ln2, x, a, kernels);
    return add_normalize(next, h, mlp(h_normed), kernels);
}

PixelTransformerImpl::PixelTransformerImpl(const ModelConfig& config) : config_(config) {
    config.validate();
    const int64_t d = config.d_model;
    tok_emb = register_module("tok_emb", nn::Embedding(kVocab, d));
    pos_emb = register_parameter("pos_emb", at::zeros({config.seq_len(), d}));
    blocks = register_module("blocks", nn::ModuleList());
    for (int64_t i = 0; i < config.n_layers; ++i) blocks->push_back(Block(config));
    ln_f = register_module("ln_f", nn::LayerNorm(nn::LayerNormOptions({d})));
    head = register_module("head", nn::Linear(d, kVocab));
    prior = register_parameter("prior", at::zeros({kVocab}));
    if (config.embed_dropout > 0) {
        emb_drop = register_module("emb_drop", nn::Dropout(config.embed_dropout));
    }

    torch::NoGradGuard no_grad;
    nn::init::normal_(tok_emb->weight, 0.0, config.embed_init_std);
    nn::init::normal_(pos_emb, 0.0, config.embed_init_std);
}

Block PixelTransformerImpl::block(size_t i) const { return blocks->ptr<BlockImpl>(i); }

const nn::LayerNorm& PixelTransformerImpl::norm_before(size_t i) const {
    return i < blocks->size() ? blocks->ptr<BlockImpl>(i)->ln1 : ln_f;
}

void PixelTransformerImpl::set_kernels(const KernelOptions& kernels) {
    kernels.validate();
    kernels_ = kernels;
    for (size_t i = 0; i < blocks->size(); ++i) {
        block(i)->kernels = kernels;
        block(i)->attn->kernels = kernels;
    }
}

at::Tensor PixelTransformerImpl::forward(const at::Tensor& tokens) {
    TORCH_CHECK(tokens.dim() == 2, "forward: tokens must be (B, S), got ", tokens.sizes());
    const int64_t S = tokens.size(1);
    TORCH_CHECK(S >= 1 && S <= config_.seq_len() - 1, "forward: sequence length ", S,
                " outside 1..", config_.seq_len() - 1);
    auto h = tok_emb->forward(tokens.to(at::kLong)) + pos_emb.narrow(0, 0, S);  // (B, S, d)
    if (emb_drop) h = emb_drop->forward(h);
    for (size_t i = 0; i < blocks->size(); ++i) h = block(i)->forward(h);
    return project(head, normalize(ln_f, h, kernels_), kernels_);  // (B, S, 256)
}

at::Tensor PixelTransformerImpl::token_nll(const at::Tensor& images) {
    const int64_t T = config_.seq_len();
    TORCH_CHECK(images.dim() == 2 && images.size(1) == T, "token_nll: images must be (B, ", T,
                "), got ", images.sizes());
    const auto x = images.to(at::kLong);
    const int64_t B = x.size(0);
    const auto logits = forward(x.narrow(1, 0, T - 1));                          // (B, T-1, 256)
    const auto targets = x.narrow(1, 1, T - 1);
    const auto network = -at::log_softmax(logits.to(at::kFloat), -1)
                              .gather(-1, targets.unsqueeze(-1))
                              .squeeze(-1);                                      // (B, T-1)
    const auto prior_nll = -at::log_softmax(prior.to(at::kFloat), -1)
                                .index_select(0, x.select(1, 0))
                                .view({B, 1});                                   // (B, 1)
    return at::cat({prior_nll, network}, 1);
}

std::vector<std::pair<at::Tensor, at::Tensor>> PixelTransformerImpl::capture_queries_keys(
    const at::Tensor& tokens) {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < blocks->size(); ++i) block(i)->attn->capture = true;
    std::vector<std::pair<at::Tensor, at::Tensor>> out;
    try {
        forward(tokens);
    } catch (...) {
        for (size_t i = 0; i < blocks->size(); ++i) block(i)->attn->capture = false;
        throw;
    }
    for (size_t i = 0; i < blocks->size(); ++i) {
        auto& attn = *block(i)->attn;
        attn.capture = false;
        out.emplace_back(std::move(attn.captured_q), std::move(attn.captured_k));
        attn.captured_q = at::Tensor();
        attn.captured_k = at::Tensor();
    }
    return out;
}

PixelTransformer copy_model(const PixelTransformer& model, at::Device device, at::ScalarType type) {
    PixelTransformer out(model->config());
    out->set_kernels(model->kernels());
    torch::NoGradGuard no_grad;
    out->to(device, type);
    auto dst = out->named_parameters();
    for (const auto& item : model->named_parameters()) dst[item.key()].copy_(item.value());
    out->eval();
    return out;
}

int64_t PixelTransformerImpl::parameter_count() const {
    int64_t n = 0;
    for (const auto& p : parameters()) n += p.numel();
    return n;
}

}  // namespace krause
