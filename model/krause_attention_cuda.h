// Fused CUDA kernels of Krause attention, compiled when LibTorch has CUDA (KRAUSE_WITH_CUDA).
// They compute what the ATen paths of model/attention.h compute; fp64 stays on those paths.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace krause {

// The contract of krause_attention_windowed: q, k, v (B, H, T, D) fp32, bf16 or fp16 on one GPU,
// log_sigma (H). Returns (B, H, T, D) in v's dtype, differentiable w.r.t. q, k, v and log_sigma.
// Distances and softmax run in fp32; the backward pass keeps one bit per (query, window key), one
// fp64 log-sum-exp per query and, for bf16/fp16, the fp32 output: never a T x T or (T, W) score
// tensor. fp64 inputs and D > 128 fall back to krause_attention_windowed.
at::Tensor krause_attention_cuda(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                 const at::Tensor& log_sigma, int64_t window, int64_t top_k);

// One decoding step: q (B, H, 1, D) against the first n_valid slots of ring_keys and ring_values
// (B, H, S, D) (slot order does not matter), keeping the top_k nearest. Returns fp32 (B, H, 1, D),
// fp64 for fp64 inputs, like the ATen step in model/decode.cpp.
at::Tensor krause_decode_cuda(const at::Tensor& q, const at::Tensor& ring_keys,
                              const at::Tensor& ring_values, int64_t n_valid,
                              const at::Tensor& log_sigma, int64_t top_k);

}  // namespace krause
