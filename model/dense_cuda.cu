// Fused CUDA kernels of the Transformer's dense layers: LayerNorm forward and backward (the
// weight and bias gradients reduced in the same pass), a decoding step's residual addition with
// the LayerNorm after it, and the column sum that gives a Linear's bias gradient. Their
// references are at::layer_norm, x + r and at::linear (model/dense.cpp).
#include "model/dense_cuda.h"

#include "model/cuda/warp.cuh"

#include <ATen/autocast_mode.h>
#include <ATen/core/grad_mode.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/version.h>

#include <algorithm>
#include <type_traits>

namespace krause {
namespace {

constexpr int kWarpsPerBlock = 8;
constexpr int kBlockThreads = 32 * kWarpsPerBlock;

// Four consecutive elements as floats, and back.
__device__ __forceinline__ float4 load4(const float* p) {
    return *reinterpret_cast<const float4*>(p);
}
__device__ __forceinline__ float4 load4(const c10::BFloat16* p) {
    const uint2 raw = *reinterpret_cast<const uint2*>(p);
    return make_float4(__uint_as_float(raw.x << 16), __uint_as_float(raw.x & 0xffff0000u),
                       __uint_as_float(raw.y << 16), __uint_as_float(raw.y & 0xffff0000u));
}
__device__ __forceinline__ void store4(float* p, float4 v) {
    *reinterpret_cast<float4*>(p) = v;
}
__device__ __forceinline__ void store4(c10::BFloat16* p, float4 v) {
    p[0] = static_cast<c10::BFloat16>(v.x);
    p[1] = static_cast<c10::BFloat16>(v.y);
    p[2] = static_cast<c10::BFloat16>(v.z);
    p[3] = static_cast<c10::BFloat16>(v.w);
}

// A warp owns a row of d = 128 * kChunks features: lane l holds features 4l + 128c .. + 3 of
// chunk c, so that each chunk is one contiguous 512-element read by the warp.
template <typename in_t, typename out_t>
struct NormParams {
    const in_t* x;        // (N, d)
    const float* weight;  // (d)
    const float* bias;    // (d)
    out_t* y;             // (N, d)
    float* mean;          // (N) or null
    float* rstd;          // (N) or null
    int64_t N;
    float eps;
};

// LayerNorm of one row held by a warp as float4 v[c] (lane l: features 4l + 128c .. + 3), written
// to y_row; returns (mean, rstd).
template <int kChunks, typename w_t, typename out_t>
__device__ __forceinline__ float2 normalize_row(const float4 (&v)[kChunks], const w_t* weight,
                                                const w_t* bias, float eps, out_t* y_row) {
    constexpr int kD = 128 * kChunks;
    const int lane = threadIdx.x % 32;
    float sum = 0.f;
#pragma unroll
    for (int c = 0; c < kChunks; ++c) sum += (v[c].x + v[c].y) + (v[c].z + v[c].w);
    const float mean = warp_sum(sum) / kD;
    float sq = 0.f;
#pragma unroll
    for (int c = 0; c < kChunks; ++c) {
        const float a = v[c].x - mean, b = v[c].y - mean, e = v[c].z - mean, f = v[c].w - mean;
        sq += (a * a + b * b) + (e * e + f * f);
    }
    const float rstd = 1.f / sqrtf(warp_sum(sq) / kD + eps);
#pragma unroll
    for (int c = 0; c < kChunks; ++c) {
        const int f = 128 * c + 4 * lane;
        const float4 w = load4(weight + f), b = load4(bias + f);
        store4(y_row + f, make_float4((v[c].x - mean) * rstd * w.x + b.x,
                                      (v[c].y - mean) * rstd * w.y + b.y,
                                      (v[c].z - mean) * rstd * w.z + b.z,
                                      (v[c].w - mean) * rstd * w.w + b.w));
    }
    return make_float2(mean, rstd);
}

template <typename in_t, typename out_t, int kChunks>
__global__ void __launch_bounds__(kBlockThreads) layer_norm_forward_kernel(
    const NormParams<in_t, out_t> p) {
    constexpr int kD = 128 * kChunks;
    const int lane = threadIdx.x % 32;
    const int64_t warps = static_cast<int64_t>(gridDim.x) * kWarpsPerBlock;
    for (int64_t row = blockIdx.x * kWarpsPerBlock + threadIdx.x / 32; row < p.N; row += warps) {
        float4 v[kChunks];
#pragma unroll
        for (int c = 0; c < kChunks; ++c) v[c] = load4(p.x + row * kD + 128 * c + 4 * lane);
        const float2 stats = normalize_row(v, p.weight, p.bias, p.eps, p.y + row * kD);
        if (p.mean != nullptr && lane == 0) {
            p.mean[row] = stats.x;
            p.rstd[row] = stats.y;
        }
    }
}

// A decoding step's residual addition and the LayerNorm after it: s = x + r, rounded to the
// stream's type as ATen's x + r rounds it, and y = LayerNorm(s) in that type, in one pass.
template <typename scalar_t, typename w_t>
struct AddNormParams {
    const scalar_t* x;   // (N, d)
    const scalar_t* r;   // (N, d)
    const w_t* weight;   // (d)
    const w_t* bias;     // (d)
    scalar_t* s;         // (N, d)
    scalar_t* y;         // (N, d)
    int64_t N;
    float eps;
};

__device__ __forceinline__ float4 round_to(float4 v, float) { return v; }
__device__ __forceinline__ float4 round_to(float4 v, c10::BFloat16) {
    auto r = [](float a) { return static_cast<float>(static_cast<c10::BFloat16>(a)); };
    return make_float4(r(v.x), r(v.y), r(v.z), r(v.w));
}

template <typename scalar_t, typename w_t, int kChunks>
__global__ void __launch_bounds__(kBlockThreads) add_layer_norm_kernel(
    const AddNormParams<scalar_t, w_t> p) {
    constexpr int kD = 128 * kChunks;
    const int lane = threadIdx.x % 32;
    const int64_t warps = static_cast<int64_t>(gridDim.x) * kWarpsPerBlock;
    for (int64_t row = blockIdx.x * kWarpsPerBlock + threadIdx.x / 32; row < p.N; row += warps) {
        float4 v[kChunks];
#pragma unroll
        for (int c = 0; c < kChunks; ++c) {
            const int64_t at = row * kD + 128 * c + 4 * lane;
            const float4 a = load4(p.x + at), b = load4(p.r + at);
            v[c] = round_to(make_float4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w), scalar_t{});
            store4(p.s + at, v[c]);
        }
        normalize_row(v, p.weight, p.bias, p.eps, p.y + row * kD);
    }
}

template <typename in_t, typename grad_t>
struct NormGradParams {
    const grad_t* dy;     // (N, d)
    const in_t* x;        // (N, d)
    const float* weight;  // (d)
    const float* mean;    // (N)
    const float* rstd;    // (N)
    in_t* dx;             // (N, d)
    float* dweight_part;  // (gridDim.x, d) one partial sum per block
    float* dbias_part;    // (gridDim.x, d)
    int64_t N;
};

// dx = rstd (g - mean(g) - xhat mean(g xhat)) with g = dy * weight; each warp also sums dy * xhat
// and dy over its rows, and the block adds its warps' sums into one partial row.
template <typename in_t, typename grad_t, int kChunks>
__global__ void __launch_bounds__(kBlockThreads) layer_norm_backward_kernel(
    const NormGradParams<in_t, grad_t> p) {
    constexpr int kD = 128 * kChunks;
    __shared__ float4 part_w[kWarpsPerBlock][kD / 4];
    __shared__ float4 part_b[kWarpsPerBlock][kD / 4];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int64_t warps = static_cast<int64_t>(gridDim.x) * kWarpsPerBlock;
    float4 acc_w[kChunks], acc_b[kChunks], w[kChunks];
#pragma unroll
    for (int c = 0; c < kChunks; ++c) {
        acc_w[c] = acc_b[c] = make_float4(0.f, 0.f, 0.f, 0.f);
        w[c] = load4(p.weight + 128 * c + 4 * lane);
    }
    for (int64_t row = blockIdx.x * kWarpsPerBlock + warp; row < p.N; row += warps) {
        const float mean = p.mean[row], rstd = p.rstd[row];
        float4 xh[kChunks], g[kChunks];
        float sum_g = 0.f, sum_gx = 0.f;
#pragma unroll
        for (int c = 0; c < kChunks; ++c) {
            const int f = 128 * c + 4 * lane;
            const float4 x = load4(p.x + row * kD + f), dy = load4(p.dy + row * kD + f);
            xh[c] = make_float4((x.x - mean) * rstd, (x.y - mean) * rstd, (x.z - mean) * rstd,
                                (x.w - mean) * rstd);
            g[c] = make_float4(dy.x * w[c].x, dy.y * w[c].y, dy.z * w[c].z, dy.w * w[c].w);
            sum_g += (g[c].x + g[c].y) + (g[c].z + g[c].w);
            sum_gx += (g[c].x * xh[c].x + g[c].y * xh[c].y) + (g[c].z * xh[c].z + g[c].w * xh[c].w);
            acc_w[c].x += dy.x * xh[c].x;
            acc_w[c].y += dy.y * xh[c].y;
            acc_w[c].z += dy.z * xh[c].z;
            acc_w[c].w += dy.w * xh[c].w;
            acc_b[c].x += dy.x;
            acc_b[c].y += dy.y;
            acc_b[c].z += dy.z;
            acc_b[c].w += dy.w;
        }
        const float mg = warp_sum(sum_g) / kD, mgx = warp_sum(sum_gx) / kD;
#pragma unroll
        for (int c = 0; c < kChunks; ++c) {
            store4(p.dx + row * kD + 128 * c + 4 * lane,
                   make_float4(rstd * (g[c].x - mg - xh[c].x * mgx),
                               rstd * (g[c].y - mg - xh[c].y * mgx),
                               rstd * (g[c].z - mg - xh[c].z * mgx),
                               rstd * (g[c].w - mg - xh[c].w * mgx)));
        }
    }
#pragma unroll
    for (int c = 0; c < kChunks; ++c) {
        part_w[warp][32 * c + lane] = acc_w[c];
        part_b[warp][32 * c + lane] = acc_b[c];
    }
    __syncthreads();
    for (int f = threadIdx.x; f < kD; f += kBlockThreads) {
        float sw = 0.f, sb = 0.f;
        for (int k = 0; k < kWarpsPerBlock; ++k) {
            sw += reinterpret_cast<const float*>(part_w[k])[f];
            sb += reinterpret_cast<const float*>(part_b[k])[f];
        }
        p.dweight_part[static_cast<int64_t>(blockIdx.x) * kD + f] = sw;
        p.dbias_part[static_cast<int64_t>(blockIdx.x) * kD + f] = sb;
    }
}

// Column sums of a (N, C) matrix, C % 4 == 0: a block's 32 x 8 threads own 128 columns (four per
// thread, one 512-element read per warp and row) and every eighth row of its row range; the
// eight row groups meet in shared memory and the block writes one partial row.
template <typename scalar_t>
__global__ void __launch_bounds__(kBlockThreads) column_sum_kernel(const scalar_t* __restrict__ x,
                                                                   int64_t N, int C,
                                                                   int64_t rows_per_block,
                                                                   float* part) {
    __shared__ float4 rows[kWarpsPerBlock][32];
    const int lane = threadIdx.x % 32, group = threadIdx.x / 32;
    const int col = blockIdx.y * 128 + 4 * lane;
    const int64_t r0 = blockIdx.x * rows_per_block;
    const int64_t r1 = r0 + rows_per_block < N ? r0 + rows_per_block : N;
    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
    if (col < C) {
        for (int64_t r = r0 + group; r < r1; r += kWarpsPerBlock) {
            const float4 v = load4(x + r * C + col);
            acc.x += v.x;
            acc.y += v.y;
            acc.z += v.z;
            acc.w += v.w;
        }
    }
    rows[group][lane] = acc;
    __syncthreads();
    if (group == 0 && col < C) {
        float4 s = rows[0][lane];
        for (int k = 1; k < kWarpsPerBlock; ++k) {
            s.x += rows[k][lane].x;
            s.y += rows[k][lane].y;
            s.z += rows[k][lane].z;
            s.w += rows[k][lane].w;
        }
        store4(part + static_cast<int64_t>(blockIdx.x) * C + col, s);
    }
}

int blocks_for(int64_t rows) {
    const int sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
    const int64_t wanted = (rows + kWarpsPerBlock - 1) / kWarpsPerBlock;
    return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(wanted, 4 * sms)));
}

bool autocast_to_bf16() {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    return at::autocast::is_autocast_enabled(at::kCUDA) &&
           at::autocast::get_autocast_dtype(at::kCUDA) == at::kBFloat16;
#else
    return false;
#endif
}

// Calls f with a value of the C++ type of an fp32 or bf16 tensor.
template <typename F>
void dispatch_float_or_bf16(at::ScalarType type, F&& f) {
    switch (type) {
        case at::kFloat: f(float{}); break;
        case at::kBFloat16: f(c10::BFloat16{}); break;
        default: TORCH_CHECK(false, "fused dense kernels: unsupported dtype ", type);
    }
}

template <typename F>
void dispatch_chunks(int64_t d, F&& f) {
    switch (d / 128) {
        case 1: f(std::integral_constant<int, 1>{}); break;
        case 2: f(std::integral_constant<int, 2>{}); break;
        case 4: f(std::integral_constant<int, 4>{}); break;
        default: TORCH_CHECK(false, "fused layer norm: unsupported width ", d);
    }
}

// Calls f(a_tag, b_tag, chunks) for two fp32-or-bf16 types and a LayerNorm width.
template <typename F>
void dispatch_norm(at::ScalarType a, at::ScalarType b, int64_t d, F&& f) {
    dispatch_float_or_bf16(a, [&](auto a_tag) {
        dispatch_float_or_bf16(b, [&](auto b_tag) {
            dispatch_chunks(d, [&](auto chunks) { f(a_tag, b_tag, chunks); });
        });
    });
}

struct NormForward {
    at::Tensor y, mean, rstd;
};

// The LayerNorm forward's one tensor-facing function. out_type: fp32 or bf16.
NormForward norm_forward(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                         double eps, at::ScalarType out_type, bool save) {
    TORCH_CHECK(layer_norm_cuda_supported(x, weight), "fused layer norm: unsupported input ",
                x.sizes(), " ", x.scalar_type(), " on ", x.device());
    const c10::cuda::CUDAGuard guard(x.device());
    const int64_t d = x.size(-1), N = x.numel() / d;
    const auto xc = x.contiguous();
    const auto w = weight.to(at::kFloat).contiguous(), b = bias.to(at::kFloat).contiguous();
    NormForward r;
    r.y = at::empty(x.sizes(), x.options().dtype(out_type));
    if (save) {
        r.mean = at::empty({N}, x.options().dtype(at::kFloat));
        r.rstd = at::empty({N}, x.options().dtype(at::kFloat));
    }
    if (N == 0) return r;
    const auto stream = at::cuda::getCurrentCUDAStream();
    dispatch_norm(x.scalar_type(), out_type, d, [&](auto in_tag, auto out_tag, auto chunks) {
        using in_t = decltype(in_tag);
        using out_t = decltype(out_tag);
        NormParams<in_t, out_t> p;
        p.x = xc.data_ptr<in_t>();
        p.weight = w.data_ptr<float>();
        p.bias = b.data_ptr<float>();
        p.y = r.y.data_ptr<out_t>();
        p.mean = save ? r.mean.data_ptr<float>() : nullptr;
        p.rstd = save ? r.rstd.data_ptr<float>() : nullptr;
        p.N = N;
        p.eps = static_cast<float>(eps);
        layer_norm_forward_kernel<in_t, out_t, decltype(chunks)::value>
            <<<blocks_for(N), kBlockThreads, 0, stream.stream()>>>(p);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
    return r;
}

struct NormBackward {
    at::Tensor dx, dweight, dbias;
};

NormBackward norm_backward(const at::Tensor& dy, const at::Tensor& x, const at::Tensor& weight,
                           const at::Tensor& mean, const at::Tensor& rstd) {
    const c10::cuda::CUDAGuard guard(x.device());
    const int64_t d = x.size(-1), N = x.numel() / d;
    const auto xc = x.contiguous(), gc = dy.contiguous();
    const auto w = weight.to(at::kFloat).contiguous();
    const int blocks = blocks_for(N);
    NormBackward r;
    r.dx = at::empty_like(xc);
    const auto parts = at::empty({2, blocks, d}, x.options().dtype(at::kFloat));
    if (N > 0) {
        const auto stream = at::cuda::getCurrentCUDAStream();
        dispatch_norm(x.scalar_type(), gc.scalar_type(), d,
                      [&](auto in_tag, auto grad_tag, auto chunks) {
            using in_t = decltype(in_tag);
            using grad_t = decltype(grad_tag);
            NormGradParams<in_t, grad_t> p;
            p.dy = gc.data_ptr<grad_t>();
            p.x = xc.data_ptr<in_t>();
            p.weight = w.data_ptr<float>();
            p.mean = mean.data_ptr<float>();
            p.rstd = rstd.data_ptr<float>();
            p.dx = r.dx.data_ptr<in_t>();
            p.dweight_part = parts[0].data_ptr<float>();
            p.dbias_part = parts[1].data_ptr<float>();
            p.N = N;
            layer_norm_backward_kernel<in_t, grad_t, decltype(chunks)::value>
                <<<blocks, kBlockThreads, 0, stream.stream()>>>(p);
            C10_CUDA_KERNEL_LAUNCH_CHECK();
        });
    }
    const auto sums = parts.sum(1);  // (2, d)
    r.dweight = sums[0].to(weight.scalar_type());
    r.dbias = sums[1].to(weight.scalar_type());
    return r;
}

class LayerNormFunction : public torch::autograd::Function<LayerNormFunction> {
public:
    static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                              const at::Tensor& weight, const at::Tensor& bias, double eps) {
        const auto type = autocast_to_bf16() ? at::kBFloat16 : x.scalar_type();
        auto r = norm_forward(x, weight, bias, eps, type, /*save=*/true);
        ctx->save_for_backward({x, weight, r.mean, r.rstd});
        return r.y;
    }

    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                   torch::autograd::variable_list grads) {
        const auto saved = ctx->get_saved_variables();
        if (!grads[0].defined()) {
            return {at::zeros_like(saved[0]), at::zeros_like(saved[1]), at::zeros_like(saved[1]),
                    at::Tensor()};
        }
        auto r = norm_backward(grads[0], saved[0], saved[1], saved[2], saved[3]);
        return {r.dx, r.dweight, r.dbias, at::Tensor()};
    }
};

// A Linear whose bias gradient is one column-sum kernel instead of ATen's reduction over the
// batch, which is several times slower at (B * T, d) shapes. Under bf16 autocast it computes what
// at::linear computes there: operands rounded to bf16, the product in bf16.
class LinearFunction : public torch::autograd::Function<LinearFunction> {
public:
    static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                              const at::Tensor& weight, const at::Tensor& bias) {
        const bool low = autocast_to_bf16();
        const auto xc = low ? x.to(at::kBFloat16) : x;
        const auto wc = low ? weight.to(at::kBFloat16) : weight;
        const auto bc = low ? bias.to(at::kBFloat16) : bias;
        ctx->save_for_backward({xc, wc});
        return at::linear(xc, wc, bc);
    }

    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                   torch::autograd::variable_list grads) {
        const auto saved = ctx->get_saved_variables();
        const auto& x = saved[0];
        const auto& w = saved[1];
        if (!grads[0].defined()) {
            return {at::zeros_like(x), at::zeros_like(w), at::zeros({w.size(0)}, w.options())};
        }
        const int64_t in = w.size(1), out = w.size(0);
        const auto g = grads[0].to(w.scalar_type()).reshape({-1, out});  // (N, out)
        const auto x2 = x.reshape({-1, in});                              // (N, in)
        const auto dx = at::mm(g, w).view(x.sizes());
        const auto dw = at::mm(g.t(), x2);
        return {dx, dw, column_sum_cuda(g)};
    }
};

// What every LayerNorm kernel asks of its input x (..., d): fp32 or bf16 on a GPU, d in
// {128, 256, 512} (the backward's shared rows fit 48 KB).
bool norm_input_supported(const at::Tensor& x) {
    const int64_t d = x.dim() >= 1 ? x.size(-1) : 0;
    const bool width = d == 128 || d == 256 || d == 512;
    const bool type = x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16;
    return x.is_cuda() && width && type;
}

}  // namespace

bool layer_norm_cuda_supported(const at::Tensor& x, const at::Tensor& weight) {
    // fp32 parameters only: a bf16 copy of the model (sampling) would pay two casts per call.
    return norm_input_supported(x) && weight.defined() && weight.numel() == x.size(-1) &&
           weight.scalar_type() == at::kFloat;
}

at::Tensor column_sum_cuda(const at::Tensor& x) {
    TORCH_CHECK(x.is_cuda() && x.dim() == 2 && x.size(1) % 4 == 0,
                "column_sum_cuda: x must be a (N, C) GPU matrix with C % 4 == 0, got ", x.sizes());
    const c10::cuda::CUDAGuard guard(x.device());
    const auto xc = x.contiguous();
    const int64_t N = xc.size(0);
    const int C = static_cast<int>(xc.size(1));
    const int col_blocks = (C + 127) / 128;
    const int sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
    // About four blocks per multiprocessor, each over a run of at least 64 rows.
    const int64_t row_blocks =
        std::max<int64_t>(1, std::min<int64_t>((N + 63) / 64, 4 * sms / col_blocks + 1));
    const int64_t rows_per_block = (N + row_blocks - 1) / row_blocks;
    const auto part = at::zeros({row_blocks, C}, xc.options().dtype(at::kFloat));
    if (N > 0 && C > 0) {
        const auto stream = at::cuda::getCurrentCUDAStream();
        dispatch_float_or_bf16(xc.scalar_type(), [&](auto tag) {
            using scalar_t = decltype(tag);
            const dim3 grid(static_cast<unsigned>(row_blocks), static_cast<unsigned>(col_blocks));
            column_sum_kernel<scalar_t><<<grid, kBlockThreads, 0, stream.stream()>>>(
                xc.data_ptr<scalar_t>(), N, C, rows_per_block, part.data_ptr<float>());
            C10_CUDA_KERNEL_LAUNCH_CHECK();
        });
    }
    return part.sum(0);
}

at::Tensor layer_norm_cuda(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                           double eps) {
    const bool grad = at::GradMode::is_enabled() &&
                      (x.requires_grad() || weight.requires_grad() || bias.requires_grad());
    if (!grad) {
        const auto type = autocast_to_bf16() ? at::kBFloat16 : x.scalar_type();
        return norm_forward(x, weight, bias, eps, type, /*save=*/false).y;
    }
    return LayerNormFunction::apply(x, weight, bias, eps);
}

bool add_layer_norm_cuda_supported(const at::Tensor& x, const at::Tensor& r,
                                   const at::Tensor& weight, const at::Tensor& bias) {
    if (!norm_input_supported(x)) return false;
    const int64_t d = x.size(-1);
    const bool params = weight.defined() && bias.defined() && weight.numel() == d &&
                        bias.numel() == d && weight.scalar_type() == bias.scalar_type() &&
                        (weight.scalar_type() == at::kFloat ||
                         weight.scalar_type() == at::kBFloat16) &&
                        weight.device() == x.device() && bias.device() == x.device();
    const bool grad =
        at::GradMode::is_enabled() && (x.requires_grad() || r.requires_grad() ||
                                       weight.requires_grad() || bias.requires_grad());
    return params && r.sizes() == x.sizes() && r.scalar_type() == x.scalar_type() &&
           r.device() == x.device() && !grad && !autocast_to_bf16();
}

std::pair<at::Tensor, at::Tensor> add_layer_norm_cuda(const at::Tensor& x, const at::Tensor& r,
                                                      const at::Tensor& weight,
                                                      const at::Tensor& bias, double eps) {
    TORCH_CHECK(add_layer_norm_cuda_supported(x, r, weight, bias),
                "fused add and layer norm: unsupported inputs ", x.sizes(), " ", x.scalar_type(),
                " + ", r.sizes(), " ", r.scalar_type(), ", weight ", weight.scalar_type(),
                " (no gradient, no autocast)");
    const c10::cuda::CUDAGuard guard(x.device());
    const int64_t d = x.size(-1), N = x.numel() / d;
    const auto xc = x.contiguous(), rc = r.contiguous();
    const auto wc = weight.contiguous(), bc = bias.contiguous();
    auto s = at::empty(x.sizes(), x.options());
    auto y = at::empty(x.sizes(), x.options());
    if (N == 0) return {s, y};
    const auto stream = at::cuda::getCurrentCUDAStream();
    dispatch_norm(x.scalar_type(), weight.scalar_type(), d, [&](auto tag, auto w_tag, auto chunks) {
        using scalar_t = decltype(tag);
        using w_t = decltype(w_tag);
        AddNormParams<scalar_t, w_t> p;
        p.x = xc.data_ptr<scalar_t>();
        p.r = rc.data_ptr<scalar_t>();
        p.weight = wc.data_ptr<w_t>();
        p.bias = bc.data_ptr<w_t>();
        p.s = s.data_ptr<scalar_t>();
        p.y = y.data_ptr<scalar_t>();
        p.N = N;
        p.eps = static_cast<float>(eps);
        add_layer_norm_kernel<scalar_t, w_t, decltype(chunks)::value>
            <<<blocks_for(N), kBlockThreads, 0, stream.stream()>>>(p);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
    return {s, y};
}

at::Tensor linear_cuda(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
    return LinearFunction::apply(x, weight, bias);
}

}  // namespace krause
