// Fused CUDA kernels of Krause attention, compiled when LibTorch has CUDA (KRAUSE_WITH_CUDA).
// They compute what the ATen paths of model/attention.h compute; fp64 stays on those paths.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace krause {

// The contract of krause_attention_windowed: q, k, v (B, H, T, D) fp32, bf16 or fp16 on one GPU,
// log_sigma (H); rows may be strided, elements of a row are read in place when contiguous.
// Returns (B, H, T, D) in v's dtype (stored as (B, T, H, D)), differentiable w.r.t. q, k, v and log_sigma.
// Distances and softmax run in fp32; the backward pass keeps 16 bytes per query (the threshold
// of the kept keys and the log-sum-exp, model/cuda/select.cuh), after the tensor-core forward
// the squared norms of each row of q and k (8 bytes), and, for bf16/fp16, the fp32 output:
// never a T x T or (T, W) score tensor. fp64 inputs and D > 128 are refused: krause_attention (model/attention.h) sends them to
// krause_attention_windowed. tensor_cores: bf16 products on tensor cores (bf16 inputs on compute
// capability 8.0 and newer; elsewhere the flag is refused), else fp32 on CUDA cores.
at::Tensor krause_attention_cuda(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                 const at::Tensor& log_sigma, int64_t window, int64_t top_k,
                                 bool tensor_cores);

// The contract of krause_attention_packed (model/attention.h) on the fused kernels.
at::Tensor krause_attention_packed_cuda(const at::Tensor& qkv, int64_t heads,
                                        const at::Tensor& log_sigma, int64_t window,
                                        int64_t top_k, bool tensor_cores);

// One decoding step, the fused form of krause_decode_ring (model/attention.h): q (B, H, 1, D)
// against the keys of the last min(position + 1, S) positions in ring_keys and ring_values
// (B, H, S, D; position p in slot p % S), keeping the top_k nearest, ties oldest first. Returns
// fp32 (B, H, 1, D), fp64 for fp64 inputs. decode_warps: warps per query, 1, 2, 4 or 8, or 0
// to choose by batch (KernelOptions::decode_warps).
at::Tensor krause_decode_cuda(const at::Tensor& q, const at::Tensor& ring_keys,
                              const at::Tensor& ring_values, int64_t position,
                              const at::Tensor& log_sigma, int64_t top_k, int decode_warps = 0);

// One replayable decoding step: stores k_new and v_new (B, H, 1, D) in slot position % S of the
// ring buffers (B, H, S, D, contiguous, written in place), then attends q (B, H, 1, D) over slots
// 0 .. min(position + 1, S) - 1, position a (1) int64 tensor on q's GPU that the kernel reads,
// so every position launches the same work. q, k_new and v_new are read in place when they are
// the thirds of one fused projection. Returns (B, H, 1, D) in the ring's dtype.
// key_norms: undefined, or (B, H, S) fp32 holding the squared norm of each stored key as the
// ring holds it, written in place as well (slot position % S): then, for bf16 and fp16 rings at
// head size 64 on compute capability 8.0 or newer, the distances are formed as ||q||^2 +
// ||k||^2 - 2 q.k with q.k on tensor cores, as the training kernels form them, instead of
// ||q - k||^2 on CUDA cores (the scores differ in the last bits).
at::Tensor krause_decode_step_cuda(const at::Tensor& q, const at::Tensor& k_new,
                                   const at::Tensor& v_new, at::Tensor& ring_keys,
                                   at::Tensor& ring_values, const at::Tensor& position,
                                   const at::Tensor& log_sigma, int64_t top_k,
                                   int decode_warps = 0,
                                   const at::Tensor& key_norms = at::Tensor());

// Whether krause_decode_step_cuda forms its distances on tensor cores, given key norms, for rings
// of dtype `ring` (kByte: fp8) and head size head_dim on the current GPU: where key norms are
// worth keeping.
bool krause_decode_uses_key_norms(at::ScalarType ring, int64_t head_dim);

}  // namespace krause
