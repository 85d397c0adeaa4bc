// The dispatch of the model's layers between the fused CUDA kernels and ATen.
#include "model/kernels.h"

#ifdef KRAUSE_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#endif

#include <algorithm>

namespace krause {

bool valid_decode_warps(int warps) {
    return warps == 0 || warps == 1 || warps == 2 || warps == 4 || warps == 8;
}

void KernelOptions::validate() const {
    TORCH_CHECK(valid_decode_warps(decode_warps),
                "decode warps per query must be 0 (automatic), 1, 2, 4 or 8, got ", decode_warps);
}

const char* path_name(KrausePath path) {
    switch (path) {
        case KrausePath::Aten: return "aten";
        case KrausePath::FusedCpu: return "fused-cpu";
        case KrausePath::FusedCpuAvx2: return "fused-cpu-avx2";
        case KrausePath::Fused: return "fused";
        case KrausePath::FusedTensorCores: return "fused-tensor-cores";
    }
    return "?";
}

bool fused_kernels_built() {
#ifdef KRAUSE_WITH_CUDA
    return true;
#else
    return false;
#endif
}

namespace {
// Whether fp32 CPU attention runs the loops' AVX2 copy: asked for, and the CPU has it.
bool avx2_loops(const KernelOptions& options) { return options.cpu_avx2 && cpu_has_avx2(); }
}  // namespace

KrausePath krause_path(const KernelOptions& options, const at::Tensor& q, int64_t window) {
    if (!options.fused_attention) return KrausePath::Aten;
    // fp64 is the tests' exact reference: the ATen path, on either device.
    if (q.device().is_cpu()) {
        if (q.scalar_type() != at::kFloat) return KrausePath::Aten;
        return avx2_loops(options) ? KrausePath::FusedCpuAvx2 : KrausePath::FusedCpu;
    }
    if (!fused_kernels_built() || !q.is_cuda()) return KrausePath::Aten;
    // fp64 is the tests' exact reference, and wide heads are rare: both keep the ATen path.
    if (q.scalar_type() == at::kDouble || (q.dim() == 4 && q.size(3) > kFusedMaxHeadDim)) {
        return KrausePath::Aten;
    }
#ifdef KRAUSE_WITH_CUDA
    if (options.tensor_cores && q.scalar_type() == at::kBFloat16 &&
        std::min(window, q.size(2)) <= kTensorCoreMaxWindow &&
        at::cuda::getDeviceProperties(q.device().index())->major >= 8) {
        return KrausePath::FusedTensorCores;
    }
#endif
    return KrausePath::Fused;
}

DecodePath krause_decode_path(const KernelOptions& options, const at::Tensor& q) {
    // fp64 is the tests' exact reference: the ATen step, on either device.
    if (!options.fused_attention || q.scalar_type() == at::kDouble) return DecodePath::Aten;
    if (q.device().is_cpu()) {
        if (q.scalar_type() != at::kFloat) return DecodePath::Aten;
        return avx2_loops(options) ? DecodePath::FusedCpuAvx2 : DecodePath::FusedCpu;
    }
    return fused_kernels_built() && q.is_cuda() ? DecodePath::Fused : DecodePath::Aten;
}

std::optional<CpuLoops> cpu_loops_of(KrausePath path) {
    if (path == KrausePath::FusedCpu) return CpuLoops::Baseline;
    if (path == KrausePath::FusedCpuAvx2) return CpuLoops::Avx2;
    return std::nullopt;
}

std::optional<CpuLoops> cpu_loops_of(DecodePath path) {
    if (path == DecodePath::FusedCpu) return CpuLoops::Baseline;
    if (path == DecodePath::FusedCpuAvx2) return CpuLoops::Avx2;
    return std::nullopt;
}

bool krause_decode_fused(const KernelOptions& options, const at::Tensor& q) {
    return krause_decode_path(options, q) == DecodePath::Fused;
}

bool dense_fused(const KernelOptions& options, const at::Tensor& x) {
    return fused_kernels_built() && options.fused_dense && x.is_cuda();
}

}  // namespace krause
