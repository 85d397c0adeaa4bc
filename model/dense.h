// The Transformer's LayerNorm and Linear layers: fused CUDA kernels where they apply, else ATen.
#pragma once

#include "model/kernels.h"

#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <utility>

namespace krause {

// x W^T + b. Through ATen's linear, which folds the bias into the matrix product (the C++
// frontend's Linear::forward adds it in a kernel of its own); when a gradient is wanted on a GPU,
// through a function whose bias gradient is one column-sum kernel.
// kernels.fused_dense off: ATen's linear everywhere.
at::Tensor project(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                   const KernelOptions& kernels = {});
at::Tensor project(const torch::nn::Linear& layer, const at::Tensor& x,
                   const KernelOptions& kernels = {});

// The LayerNorm `layer` of x; on a GPU the fused kernels of model/dense_cuda.h.
at::Tensor normalize(const torch::nn::LayerNorm& layer, const at::Tensor& x,
                     const KernelOptions& kernels = {});

// The residual addition s = x + r and the LayerNorm `layer` of s, as (s, normalized): one CUDA
// kernel where the fused dense kernels run and nothing needs a gradient (decoding), else x + r
// and normalize().
std::pair<at::Tensor, at::Tensor> add_normalize(const torch::nn::LayerNorm& layer,
                                                const at::Tensor& x, const at::Tensor& r,
                                                const KernelOptions& kernels = {});

}  // namespace krause
