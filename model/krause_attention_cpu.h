// Fused Krause attention on the CPU: per query row, one pass over its window computes the
// distances, the top-K selection, the softmax and the weighted sum of values, and the backward
// makes one more pass; nothing of size (T, W) is ever materialised. krause_attention_windowed
// (model/attention.h) is its reference, and krause_path chooses it for fp32 CPU tensors. The
// decoding step does the same for one query against a ring buffer (reference:
// krause_decode_ring; chosen by krause_decode_path).
#pragma once

#include <ATen/ATen.h>

namespace krause {

// Which compiled copy of the loops runs: baseline x86-64 (four fp32 lanes), or AVX2 (eight),
// built beside it with the same code and giving the same results bit for bit; krause_path and
// krause_decode_path choose AVX2 where the CPU has it.
enum class CpuLoops { Baseline, Avx2 };

// Whether this build has the AVX2 loops and the CPU runs them.
bool cpu_has_avx2();

// q, k, v (B, H, T, D) fp32 or fp64 CPU tensors (any strides); log_sigma (H). Returns (B, H, T,
// D) in the inputs' type, stored heads last (a (B, T, H, D) tensor viewed as (B, H, T, D)), so
// merging the heads is free. Differentiable in q, k, v and log_sigma. Ties at the K-th score
// keep the oldest keys first, as every path does. Avx2 loops on a CPU without them throw.
at::Tensor krause_attention_cpu(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                const at::Tensor& log_sigma, int64_t window, int64_t top_k,
                                CpuLoops loops = CpuLoops::Baseline);

// One decoding step, as krause_decode_ring (model/attention.h) computes it: q (B, H, 1, D)
// attends the keys of the last min(position + 1, S) positions in the ring buffers (B, H, S, D),
// whose slot position % S already holds this step's key and value; ties keep the oldest key
// first. fp32 or fp64 CPU tensors of one type; returns (B, H, 1, D) in that type.
at::Tensor krause_decode_ring_cpu(const at::Tensor& q, const at::Tensor& ring_keys,
                                  const at::Tensor& ring_values, int64_t position,
                                  const at::Tensor& log_sigma, int64_t top_k,
                                  CpuLoops loops = CpuLoops::Baseline);

}  // namespace krause
