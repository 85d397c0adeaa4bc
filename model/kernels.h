// Which kernels run a model's layers: a small value carried by the model (so by every job that
// runs it) and read by one dispatch function per layer kind. Benchmarks and tests compare the
// choices by handing different values around; nothing here is process-global.
#pragma once

#include "model/krause_attention_cpu.h"  // CpuLoops

#include <ATen/ATen.h>

#include <optional>

namespace krause {

struct KernelOptions {
    // The fused kernels of Krause attention where they apply: the CUDA kernels (training,
    // evaluation and decoding) and the CPU loops of model/krause_attention_cpu.h (training and
    // evaluation); off, the ATen paths of model/attention.h, the reference benchmarks compare
    // with.
    bool fused_attention = true;
    // The fused LayerNorm and Linear kernels of model/dense_cuda.h; off, ATen's.
    bool fused_dense = true;
    // bf16 products of the fused Krause kernels on tensor cores (compute capability 8.0 and
    // newer): the forward's scores and weighted sum of values, and with them the backward's (the
    // backward follows the forward it differentiates). Off, everything runs on CUDA cores in
    // fp32 like the fp32 path.
    bool tensor_cores = true;
    // Warps that attend one query together in the decode kernel: 1, 2, 4 or 8, or 0 to choose
    // by batch (one warp per query while the queries alone fill the GPU, more where they are few).
    int decode_warps = 0;
    // The CPU loops' AVX2 copy where the CPU has it; off, the baseline x86-64 copy (the same
    // results bit for bit, slower).
    bool cpu_avx2 = true;

    // Throws c10::Error naming the field for a value no kernel takes.
    void validate() const;
};

// Whether the decode kernel takes this many warps per query (0, 1, 2, 4 or 8).
bool valid_decode_warps(int warps);

// How Krause attention runs on given inputs.
enum class KrausePath {
    Aten,              // krause_attention_windowed: fp64, a GPU tensor of a type or head size
                       // the kernels do not take or in a build without them, or
                       // fused_attention off
    FusedCpu,          // krause_attention_cpu: fp32 on the CPU, baseline x86-64 loops
    FusedCpuAvx2,      // the same with the AVX2 loops
    Fused,             // the fused CUDA kernels with fp32 arithmetic on CUDA cores
    FusedTensorCores,  // the fused CUDA kernels with bf16 products on tensor cores (bf16 on
                       // compute capability 8.0+, windows up to kTensorCoreMaxWindow keys)
};
const char* path_name(KrausePath path);

// Whether this build has the fused CUDA kernels (LibTorch with CUDA and nvcc at build time).
bool fused_kernels_built();

// The one decision for full-sequence Krause attention of q (B, H, T, D) on its device, with
// windows of `window` keys.
KrausePath krause_path(const KernelOptions& options, const at::Tensor& q, int64_t window);

// How a decoding step of Krause attention runs for q (B, H, 1, D) on its device.
enum class DecodePath {
    Aten,      // krause_decode_ring / krause_decode_step: fp64, or fused_attention off
    FusedCpu,      // krause_decode_ring_cpu: fp32 on the CPU, baseline x86-64 loops
    FusedCpuAvx2,  // the same with the AVX2 loops
    Fused,     // the fused CUDA decode kernel (fp32, bf16, fp16, and fp8 rings)
};
DecodePath krause_decode_path(const KernelOptions& options, const at::Tensor& q);

// The CPU loops a path runs, if it runs them.
std::optional<CpuLoops> cpu_loops_of(KrausePath path);
std::optional<CpuLoops> cpu_loops_of(DecodePath path);

// Whether a decoding step of q runs the fused CUDA decode kernel (what fp8 rings need).
bool krause_decode_fused(const KernelOptions& options, const at::Tensor& q);

// Whether the dense layers of a model on x's device run the fused kernels.
bool dense_fused(const KernelOptions& options, const at::Tensor& x);

// The largest head size of the fused training kernels.
constexpr int64_t kFusedMaxHeadDim = 128;

// The largest window (keys, after clamping to T) of the tensor-core forward, whose score tile and
// selection hold a whole window on chip; wider windows run on CUDA cores, forward and backward.
constexpr int64_t kTensorCoreMaxWindow = 256;

}  // namespace krause
