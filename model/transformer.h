// PixelTransformer: the paper's pixel-autoregressive Transformer plus a learned prior for x[0].
#pragma once

#include "model/config.h"
#include "model/decode.h"
#include "model/dense.h"
#include "model/kernels.h"

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <array>
#include <utility>
#include <vector>

namespace krause {

constexpr int64_t kVocab = 256;

// Multi-head attention of one of three kinds, with q, k, v and out projections (Linear + bias).
class AttentionImpl : public torch::nn::Module {
public:
    explicit AttentionImpl(const ModelConfig& config);

    at::Tensor forward(const at::Tensor& x);  // (B, T, d) -> (B, T, d)
    // One new position per sequence: x (B, 1, d) -> (B, 1, d), updating the cache.
    at::Tensor step(const at::Tensor& x, LayerCache& cache, int64_t position);
    // The same step with the position held on the device ((1) int64), so that a step does not
    // change from one position to the next and can be replayed (a CUDA graph): the caches are
    // read whole and masked instead of narrowed.
    at::Tensor step_at(const at::Tensor& x, LayerCache& cache, const at::Tensor& position);
    // Empty caches and the stacked q/k/v projection (qkv_parameters) that steps read. With
    // fp8_rings, Krause ring buffers hold fp8 (e4m3) bytes (kByte), read by the fused CUDA
    // decode kernel of step_at only; the other kinds keep `options`.
    LayerCache empty_cache(int64_t batch, const at::TensorOptions& options,
                           bool fp8_rings = false) const;
    // Weights of queries [q_begin, q_begin + Q) over keys [0, q_begin + Q), fp32 (B, H, Q, S);
    // `attended`, when given, receives the bool mask of keys each query attends to.
    at::Tensor weights(const at::Tensor& q, const at::Tensor& k, int64_t q_begin,
                       at::Tensor* attended = nullptr) const;

    // Which kernels run this layer (set for the whole model by PixelTransformerImpl::set_kernels).
    KernelOptions kernels;
    // When set, forward() keeps its per-head queries and keys (B, H, T, D) for probes.
    bool capture = false;
    at::Tensor captured_q, captured_k;

    torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};
    at::Tensor log_sigma;  // (H), Krause only

    // The q, k, v projections stacked into one: weight (3d, d) and bias (3d), differentiable.
    std::array<at::Tensor, 2> qkv_parameters() const;

private:
    // q, k, v (B, H, 1, D) of one position, from the cache's stacked projection.
    std::array<at::Tensor, 3> step_qkv(const at::Tensor& x, const LayerCache& cache) const;
    // Linear attention's decode step (no position involved): q, k, v (B, H, 1, D).
    at::Tensor linear_step(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           LayerCache& cache) const;
    ModelConfig config_;
};
TORCH_MODULE(Attention);

// Pre-LayerNorm block: x += drop(attn(LN(x))); x += drop(mlp_drop(MLP(LN(x)))), where mlp_drop
// exists only when the config's mlp_dropout is > 0.
class BlockImpl : public torch::nn::Module {
public:
    explicit BlockImpl(const ModelConfig& config);
    at::Tensor forward(const at::Tensor& x);
    // One new position per sequence: the stream x (B, 1, d) and x_normed = ln1(x); updates the
    // cache and returns the block's output and `next`'s LayerNorm of it (the next block's ln1,
    // or the model's ln_f), so that each residual addition and the LayerNorm after it run as one
    // kernel (model/dense.h add_normalize).
    std::pair<at::Tensor, at::Tensor> step(const at::Tensor& x, const at::Tensor& x_normed,
                                           LayerCache& cache, int64_t position,
                                           const torch::nn::LayerNorm& next);
    // The same with the position held on the device (AttentionImpl::step_at).
    std::pair<at::Tensor, at::Tensor> step_at(const at::Tensor& x, const at::Tensor& x_normed,
                                              LayerCache& cache, const at::Tensor& position,
                                              const torch::nn::LayerNorm& next);

    torch::nn::LayerNorm ln1{nullptr}, ln2{nullptr};
    Attention attn{nullptr};
    torch::nn::Linear fc1{nullptr}, fc2{nullptr};
    torch::nn::Dropout drop{nullptr};
    torch::nn::Dropout mlp_drop{nullptr};
    KernelOptions kernels;  // of the LayerNorm and MLP layers, see PixelTransformerImpl

private:
    at::Tensor mlp(const at::Tensor& x);
    // The rest of a step after the attention's output a: both residual additions.
    std::pair<at::Tensor, at::Tensor> finish_step(const at::Tensor& x, const at::Tensor& a,
                                                  const torch::nn::LayerNorm& next);
};
TORCH_MODULE(Block);

class PixelTransformerImpl : public torch::nn::Module {
public:
    explicit PixelTransformerImpl(const ModelConfig& config);

    // tokens (B, S) with S <= T - 1, the network inputs x[0..S-1]; returns logits (B, S, 256)
    // where logits[:, p] predicts x[p + 1].
    at::Tensor forward(const at::Tensor& tokens);
    // Negative log-likelihood in nats of each sub-pixel: images (B, T) -> (B, T); column 0 is the
    // prior's NLL of x[0], column p >= 1 the network's NLL of x[p].
    at::Tensor token_nll(const at::Tensor& images);

    // Caches for `batch` sequences in the model's dtype; fp8_rings: Krause ring buffers in fp8
    // (model on a GPU with the fused kernels, decoded with decode_step_at only).
    DecodeState start_decode(int64_t batch, bool fp8_rings = false);
    // Consumes x[position] for each sequence (tokens (B)) and returns logits (B, 256) for
    // x[position + 1]. Equal, up to rounding, to forward()'s logits at that position.
    at::Tensor decode_step(DecodeState& state, const at::Tensor& tokens);
    // decode_step with the position as a (1) int64 tensor on the model's device, which the
    // caller advances; state.position is not used. Every call launches the same work, so one
    // call can be captured and replayed (model/sampler_replay.cpp).
    at::Tensor decode_step_at(DecodeState& state, const at::Tensor& tokens,
                              const at::Tensor& position);

    // Per layer, the per-head queries and keys (B, H, S, D) of a forward pass over tokens.
    std::vector<std::pair<at::Tensor, at::Tensor>> capture_queries_keys(const at::Tensor& tokens);

    const ModelConfig& config() const { return config_; }
    int64_t parameter_count() const;

    // Which kernels every layer runs (model/kernels.h); the defaults take the fused kernels
    // wherever they apply. A choice of the run, not of the weights: checkpoints do not hold it.
    void set_kernels(const KernelOptions& kernels);
    const KernelOptions& kernels() const { return kernels_; }

    torch::nn::Embedding tok_emb{nullptr};
    at::Tensor pos_emb;  // (T, d)
    torch::nn::Dropout emb_drop{nullptr};  // on the embedding sum; only when embed_dropout > 0
    torch::nn::ModuleList blocks{nullptr};
    torch::nn::LayerNorm ln_f{nullptr};
    torch::nn::Linear head{nullptr};
    at::Tensor prior;  // (256) logits of x[0]

private:
    Block block(size_t i) const;
    // The LayerNorm before block i: its ln1, or ln_f for i = the number of blocks.
    const torch::nn::LayerNorm& norm_before(size_t i) const;
    ModelConfig config_;
    KernelOptions kernels_;
};
TORCH_MODULE(PixelTransformer);

// A separate copy of the weights, on `device` in floating type `type`, in eval mode: jobs that
// must not share module state with the original, or sampling in bf16.
PixelTransformer copy_model(const PixelTransformer& model, at::Device device, at::ScalarType type);

}  // namespace krause
