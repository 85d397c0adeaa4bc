// Dispatch of the dense layers between the fused CUDA kernels and ATen, their reference.
#include "model/dense.h"

#ifdef KRAUSE_WITH_CUDA
#include "model/dense_cuda.h"
#endif

namespace krause {

at::Tensor project(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                   const KernelOptions& kernels) {
#ifdef KRAUSE_WITH_CUDA
    const bool grad = at::GradMode::is_enabled() &&
                      (x.requires_grad() || weight.requires_grad() || bias.requires_grad());
    if (grad && dense_fused(kernels, x) && bias.defined() && weight.size(0) % 4 == 0) {
        return linear_cuda(x, weight, bias);
    }
#endif
    return at::linear(x, weight, bias);
}

at::Tensor project(const torch::nn::Linear& layer, const at::Tensor& x,
                   const KernelOptions& kernels) {
    return project(x, layer->weight, layer->bias, kernels);
}

at::Tensor normalize(const torch::nn::LayerNorm& layer, const at::Tensor& x,
                     const KernelOptions& kernels) {
    const auto& options = layer->options;
#ifdef KRAUSE_WITH_CUDA
    if (dense_fused(kernels, x) && options.elementwise_affine() &&
        options.normalized_shape().size() == 1 && layer_norm_cuda_supported(x, layer->weight)) {
        return layer_norm_cuda(x, layer->weight, layer->bias, options.eps());
    }
#endif
    return at::layer_norm(x, options.normalized_shape(), layer->weight, layer->bias,
                          options.eps());
}

std::pair<at::Tensor, at::Tensor> add_normalize(const torch::nn::LayerNorm& layer,
                                                const at::Tensor& x, const at::Tensor& r,
                                                const KernelOptions& kernels) {
#ifdef KRAUSE_WITH_CUDA
    const auto& options = layer->options;
    if (dense_fused(kernels, x) && options.elementwise_affine() &&
        options.normalized_shape().size() == 1 &&
        add_layer_norm_cuda_supported(x, r, layer->weight, layer->bias)) {
        return add_layer_norm_cuda(x, r, layer->weight, layer->bias, options.eps());
    }
#endif
    auto s = x + r;
    auto normalized = normalize(layer, s, kernels);
    return {std::move(s), std::move(normalized)};
}

}  // namespace krause
