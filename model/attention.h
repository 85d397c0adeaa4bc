// The three attention functions of the pixel Transformer, full-sequence and single-step forms.
//
// Letters used in shape comments throughout model/: B batch, T sequence, H heads, D head size,
// W window, K top-k, S keys held in a decode cache.
#pragma once

#include "model/kernels.h"

#include <ATen/ATen.h>

#include <array>

namespace krause {

// ---- Krause attention (RBF scores, causal window of W keys, K nearest kept) ----------------

// The production CPU path: queries in blocks of W against the current and previous key block, so
// time and memory are O(B*H*T*W). q, k, v: (B, H, T, D); log_sigma: (H). Returns (B, H, T, D).
// Distances are computed in fp32 (fp64 when the inputs are fp64).
at::Tensor krause_attention_windowed(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                     const at::Tensor& log_sigma, int64_t window, int64_t top_k);

// Per query (B, H, T): its window's K-th largest score minus the (K+1)-th, relative to the K-th
// (over max(|s_K|, 1)), in the precision of krause_attention_windowed (fp64 for fp64 inputs);
// +inf where the window holds K keys or fewer. Where it is within rounding, which of the two
// keys top-K keeps depends on how the scores were rounded.
at::Tensor krause_kth_gap(const at::Tensor& q, const at::Tensor& k, const at::Tensor& log_sigma,
                          int64_t window, int64_t top_k);

// The specification: dense T x T scores, causal and window masks, top-K, softmax. Tests only.
at::Tensor krause_attention_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                      const at::Tensor& log_sigma, int64_t window, int64_t top_k);

// Dispatch by krause_path (model/kernels.h): the fused CUDA kernels where they apply (on a GPU,
// by default), the fused CPU loops for fp32 on the CPU, else the windowed ATen path.
at::Tensor krause_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& log_sigma, int64_t window, int64_t top_k,
                            const KernelOptions& kernels = {});

// q, k, v as (B, H, T, D) views of one fused projection qkv (B, T, 3 * H * D).
std::array<at::Tensor, 3> unpack_qkv(const at::Tensor& qkv, int64_t heads);
// Heads side by side again: (B, H, T, D) -> (B, T, H * D), a view when stored heads-last.
at::Tensor merge_heads(const at::Tensor& x);

// krause_attention of the thirds of a fused projection qkv (B, T, 3 * H * D); returns
// (B, T, H * D), heads merged. On the fused CUDA path the kernels read the heads in place and the
// gradient of qkv comes back as one tensor: no head is transposed or copied either way.
at::Tensor krause_attention_packed(const at::Tensor& qkv, int64_t heads,
                                   const at::Tensor& log_sigma, int64_t window, int64_t top_k,
                                   const KernelOptions& kernels = {});

// Ties: where equal scores straddle the K-th place, every path (the references, the fused
// training kernels and decoding) keeps the oldest keys first, i.e. the lowest positions. A ring
// buffer holds position p in slot p % S, so after it wraps the oldest key sits in slot
// (p + 1) % S, not in slot 0; decoding ranks ties by age, not by slot.

// One decoding step with the position on the host, the plain ATen form used by the host loop:
// q (B, H, 1, D) attends the keys of the last min(position + 1, S) positions in the ring buffers
// (B, H, S, D), whose slot position % S already holds this step's key and value. Returns
// (B, H, 1, D) in fp32 (fp64 for fp64 inputs).
at::Tensor krause_decode_ring(const at::Tensor& q, const at::Tensor& ring_keys,
                              const at::Tensor& ring_values, int64_t position,
                              const at::Tensor& log_sigma, int64_t top_k);

// One decoding step with the position held on the device, the plain ATen form and the reference
// of krause_decode_step_cuda: stores k_new, v_new (B, H, 1, D) in slot position % S of the ring
// buffers (B, H, S, D), then attends q (B, H, 1, D) over the keys of the last
// min(position + 1, S) positions. position: (1) int64 on q's device. Returns (B, H, 1, D) in fp32
// (fp64 for fp64 inputs).
at::Tensor krause_decode_step(const at::Tensor& q, const at::Tensor& k_new, const at::Tensor& v_new,
                              at::Tensor& ring_keys, at::Tensor& ring_values,
                              const at::Tensor& position, const at::Tensor& log_sigma,
                              int64_t top_k);

// Scores of queries against keys, -||q - k||^2 / (2 sigma_h^2), in fp32 (fp64 for fp64 inputs).
// q: (B, H, Q, D), k: (B, H, S, D), log_sigma: (H) -> (B, H, Q, S).
at::Tensor krause_scores(const at::Tensor& q, const at::Tensor& k, const at::Tensor& log_sigma);

// Keeps the top_k largest entries of each row among those where `valid` is true; the rest become
// -inf. The last dim must run from the oldest key to the newest: among entries equal to the K-th
// largest, the earliest are kept. Selection is not differentiated (a fixed mask in the backward
// pass), values are.
at::Tensor keep_top_k(const at::Tensor& scores, const at::Tensor& valid, int64_t top_k);

// ---- Softmax attention (causal, scaled dot product) ----------------------------------------

at::Tensor softmax_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);
// Dense masked reference, always the plain formula.
at::Tensor softmax_attention_reference(const at::Tensor& q, const at::Tensor& k,
                                       const at::Tensor& v);

// ---- Linear attention (phi = elu + 1, causal prefix sums) ----------------------------------

// Chunked: exact prefix sums with O(T*C*D + T*D^2/C) work and no (T, D, D) tensor.
at::Tensor linear_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);
// Plain cumulative sums over (B, H, T, D, D): the specification. Tests only.
at::Tensor linear_attention_reference(const at::Tensor& q, const at::Tensor& k,
                                      const at::Tensor& v);
at::Tensor linear_feature_map(const at::Tensor& x);
constexpr double kLinearEps = 1e-6;

// ---- Attention weights of chosen queries (for probes and measures) --------------------------

// Dense weights of queries at positions [q_begin, q_begin + Q) over keys [0, q_begin + Q).
// q: (B, H, Q, D); k: (B, H, S, D) with S >= q_begin + Q. Returns fp32 (B, H, Q, q_begin + Q):
// zero where a key is not attended. For linear attention these are the implied weights
// phi(q_i).phi(k_j) / (phi(q_i).z_i + eps).
// `kept`, when given, receives the attended keys as a bool (B, H, Q, S) mask: weights can underflow
// to zero for a kept key, so the mask, not the weight, says what top-K selected.
at::Tensor krause_weights(const at::Tensor& q, const at::Tensor& k, const at::Tensor& log_sigma,
                          int64_t q_begin, int64_t window, int64_t top_k,
                          at::Tensor* kept = nullptr);
at::Tensor softmax_weights(const at::Tensor& q, const at::Tensor& k, int64_t q_begin);
at::Tensor linear_weights(const at::Tensor& q, const at::Tensor& k, int64_t q_begin);

}  // namespace krause
