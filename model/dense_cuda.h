// Fused CUDA kernels of the dense layers, compiled when LibTorch has CUDA (KRAUSE_WITH_CUDA).
// They compute what at::layer_norm and at::linear compute (model/dense.h dispatches).
#pragma once

#include <ATen/ATen.h>

#include <utility>

namespace krause {

// Whether layer_norm_cuda takes x (..., d) with this weight: x fp32 or bf16 on a GPU, d in
// {128, 256, 512}, the weight fp32.
bool layer_norm_cuda_supported(const at::Tensor& x, const at::Tensor& weight);

// LayerNorm over the last dim in fp32, one pass each way; the backward reduces the weight and
// bias gradients in the same pass. The output is bf16 under bf16 autocast (the rounding the next
// Linear would apply), else x's dtype. Differentiable w.r.t. x, weight and bias.
at::Tensor layer_norm_cuda(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                           double eps);

// Whether add_layer_norm_cuda takes these: x and r alike, fp32 or bf16 on a GPU, d in
// {128, 256, 512}; weight and bias fp32 or bf16; no gradient wanted and no autocast (decoding).
bool add_layer_norm_cuda_supported(const at::Tensor& x, const at::Tensor& r,
                                   const at::Tensor& weight, const at::Tensor& bias);

// (s, LayerNorm(s)) with s = x + r, in one kernel: s rounded to x's dtype as x + r rounds it, the
// LayerNorm computed in fp32 from that s and returned in x's dtype. Not differentiable.
std::pair<at::Tensor, at::Tensor> add_layer_norm_cuda(const at::Tensor& x, const at::Tensor& r,
                                                      const at::Tensor& weight,
                                                      const at::Tensor& bias, double eps);

// at::linear(x, weight, bias), differentiable, with the bias gradient reduced by column_sum_cuda.
at::Tensor linear_cuda(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);

// Sums of the columns of a (N, C) fp32 or bf16 GPU matrix, C % 4 == 0, in fp32: (C).
at::Tensor column_sum_cuda(const at::Tensor& x);

}  // namespace krause
