// Fused CUDA Krause attention as an op: checks, allocations and launches of the kernels of
// forward.cu, backward.cu and backward_mma.cu, joined by torch::autograd::Functions.
// The reference they must match is krause_attention_windowed (model/krause_attention.cpp).
#include "model/krause_attention_cuda.h"

#include "model/attention.h"
#include "model/cuda/params.cuh"

#include <ATen/core/grad_mode.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <map>
#include <mutex>
#include <utility>

namespace krause {
namespace fused {

bool prepare_launch(const void* kernel, size_t bytes) {
    struct Facts {
        size_t shared_limit = 0;  // the dynamic shared memory limit set so far
        int binary_version = -1;  // of the kernel's code on the device (90: sm_90)
    };
    static std::mutex mutex;
    static std::map<std::pair<const void*, int>, Facts> known;
    const int device = c10::cuda::current_device();
    const std::lock_guard<std::mutex> lock(mutex);
    Facts& facts = known[{kernel, device}];
    if (facts.binary_version < 0) {
        cudaFuncAttributes attributes{};
        C10_CUDA_CHECK(cudaFuncGetAttributes(&attributes, kernel));
        facts.binary_version = attributes.binaryVersion;
    }
    if (bytes > facts.shared_limit) {
        C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            static_cast<int>(bytes)));
        facts.shared_limit = bytes;
    }
    return facts.binary_version >= 90;
}

}  // namespace fused

namespace {

using namespace fused;

// Calls f with a value of the C++ type of a fused dtype.
template <typename F>
void dispatch_dtype(at::ScalarType type, F&& f) {
    switch (type) {
        case at::kFloat: f(float{}); break;
        case at::kBFloat16: f(c10::BFloat16{}); break;
        case at::kHalf: f(c10::Half{}); break;
        default: TORCH_CHECK(false, "krause_attention_cuda: unsupported dtype ", type);
    }
}

// The kernels' view of a (B, H, T, D) operand: rows may lie anywhere, elements of a row not.
Layout layout_of(const at::Tensor& t) {
    TORCH_INTERNAL_ASSERT(t.dim() == 4 && (t.stride(3) == 1 || t.size(3) <= 1));
    return {t.stride(0), t.stride(1), t.stride(2)};
}

at::Tensor rows_readable(const at::Tensor& t) { return t.stride(3) == 1 ? t : t.contiguous(); }

// Whether every row of these (B, H, T, D) 16-bit operands starts on a 16-byte boundary and holds
// whole 16-byte pieces, so that the kernels may move rows as vectors.
bool rows_16_byte(std::initializer_list<const at::Tensor*> operands) {
    for (const auto* t : operands) {
        if (t->element_size() != 2 || t->size(3) % 8 != 0 ||
            reinterpret_cast<uintptr_t>(t->data_ptr()) % 16 != 0) {
            return false;
        }
        for (int d = 0; d < 3; ++d) {
            if (t->size(d) > 1 && t->stride(d) % 8 != 0) return false;
        }
    }
    return true;
}

// A (B, H, T, D) tensor stored as (B, T, H, D), so that merging its heads is a free view.
at::Tensor empty_heads_last(const at::Tensor& like, at::ScalarType type) {
    return at::empty({like.size(0), like.size(2), like.size(1), like.size(3)},
                     like.options().dtype(type))
        .transpose(1, 2);
}

struct ForwardResult {
    at::Tensor out;      // (B, H, T, D) in v's dtype, stored heads last
    at::Tensor out_f32;  // (B, H, T, D) fp32, stored heads last; undefined when out is fp32 or
                         // nothing is saved
    at::Tensor threshold;  // (B, H, T, 2) int32: (tau, r_last) of RowStats; undefined when
                           // nothing is saved
    at::Tensor lse;        // (B, H, T, 2) fp32: the log-sum-exp as (hi, lo); likewise
    at::Tensor norms;      // (2, B, H, T) fp32: the squared norms of the rows of q and of k, which
                           // the tensor-core kernels read; else empty, or undefined likewise
    bool tensor_cores = false;  // the scores came from the tensor-core kernel
};

int checked_int(int64_t x, const char* what) {
    TORCH_CHECK(x <= std::numeric_limits<int>::max(), "krause_attention_cuda: ", what, " = ", x,
                " is too large");
    return static_cast<int>(x);
}

// The forward op's one tensor-facing function: checks, allocations, launch.
ForwardResult krause_forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                             const at::Tensor& log_sigma, int64_t window, int64_t top_k,
                             bool tensor_cores, bool for_backward) {
    TORCH_CHECK(q.dim() == 4, "krause_attention_cuda: q must be (B, H, T, D), got ", q.sizes());
    TORCH_CHECK(k.sizes() == q.sizes() && v.sizes() == q.sizes(),
                "krause_attention_cuda: q, k, v shapes differ: ", q.sizes(), k.sizes(), v.sizes());
    TORCH_CHECK(q.is_cuda() && k.device() == q.device() && v.device() == q.device() &&
                    log_sigma.device() == q.device(),
                "krause_attention_cuda: q, k, v and log_sigma must be on one GPU");
    TORCH_CHECK(k.scalar_type() == q.scalar_type() && v.scalar_type() == q.scalar_type(),
                "krause_attention_cuda: q, k, v dtypes differ");
    TORCH_CHECK(log_sigma.dim() == 1 && log_sigma.size(0) == q.size(1),
                "krause_attention_cuda: log_sigma must be (H) with H = ", q.size(1));
    TORCH_CHECK(window >= 1, "krause_attention_cuda: window must be >= 1, got ", window);
    TORCH_CHECK(top_k >= 1, "krause_attention_cuda: top_k must be >= 1, got ", top_k);
    TORCH_CHECK(q.scalar_type() != at::kDouble,
                "krause_attention_cuda: fp64 runs on the ATen path (krause_attention)");
    TORCH_CHECK(q.size(3) <= kFusedMaxHeadDim, "krause_attention_cuda: head size ", q.size(3),
                " > ", kFusedMaxHeadDim, " runs on the ATen path (krause_attention)");
    const c10::cuda::CUDAGuard guard(q.device());
    const auto qc = rows_readable(q), kc = rows_readable(k), vc = rows_readable(v);
    const auto ls = log_sigma.to(at::kFloat).contiguous();  // (H)

    const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3);
    TORCH_CHECK(B * H * T <= std::numeric_limits<int>::max(),
                "krause_attention_cuda: B * H * T = ", B * H * T, " is too large");
    const int W = static_cast<int>(std::min(window, std::max<int64_t>(T, 1)));
    const int K = static_cast<int>(std::min<int64_t>(top_k, W));
    const int n_qtiles = static_cast<int>((T + kFwdRows - 1) / kFwdRows);
    const int n_tiles = checked_int(B * H * n_qtiles, "tiles");
    const int n_cols = (kFwdRows + W - 1 + kTile - 1) / kTile * kTile;
    const int kd = padded_head_dim(D);

    ForwardResult r;
    r.out = empty_heads_last(vc, vc.scalar_type());
    if (for_backward) {
        if (vc.scalar_type() != at::kFloat) r.out_f32 = empty_heads_last(vc, at::kFloat);
        r.threshold = at::empty({B, H, T, 2}, q.options().dtype(at::kInt));
        r.lse = at::empty({B, H, T, 2}, q.options().dtype(at::kFloat));
        r.norms = at::empty({0}, q.options().dtype(at::kFloat));
    }
    if (n_tiles == 0) return r;

    const auto* props = at::cuda::getCurrentDeviceProperties();
    TORCH_CHECK(!tensor_cores || (vc.scalar_type() == at::kBFloat16 && props->major >= 8),
                "krause_attention_cuda: tensor cores take bf16 on compute capability 8.0+, got ",
                vc.scalar_type(), " on ", props->major, ".", props->minor);
    // The backward recomputes the forward's scores bit for bit to find the kept keys, and runs
    // on tensor cores up to head size 64 only: above, a forward that is differentiated later
    // forms its scores on CUDA cores like the backward. So do windows over kTensorCoreMaxWindow
    // (krause_path already sends those to the CUDA-core kernels).
    const bool mma = tensor_cores && W <= kTensorCoreMaxWindow && (kd <= 64 || !for_backward);
    auto shared_bytes = [&](bool scores_in_shared) {
        return forward_shared_bytes(kd, n_cols, scores_in_shared, mma);
    };
    r.tensor_cores = mma;
    if (mma) r.norms = at::empty({2, B, H, T}, q.options().dtype(at::kFloat));
    const bool in_shared = shared_bytes(true) <= props->sharedMemPerBlockOptin;
    const size_t bytes = shared_bytes(in_shared);
    // Score tiles that outgrow shared memory live in a per-block workspace: a grid of a few
    // blocks per multiprocessor keeps it O(W), not O(T * W).
    const int grid = in_shared ? n_tiles : std::min(n_tiles, 4 * props->multiProcessorCount);
    at::Tensor workspace;
    if (!in_shared) {
        workspace = at::empty({int64_t(grid) * n_cols * kFwdPitch}, q.options().dtype(at::kFloat));
    }
    const auto stream = at::cuda::getCurrentCUDAStream();
    float* q_norm = mma ? r.norms.data_ptr<float>() : nullptr;
    float* k_norm = mma ? q_norm + B * H * T : nullptr;
    if (mma) {
        launch_row_norms(qc.data_ptr<c10::BFloat16>(), kc.data_ptr<c10::BFloat16>(),
                         layout_of(qc), layout_of(kc), rows_16_byte({&qc, &kc}),
                         static_cast<int>(B * H), static_cast<int>(H),
                         static_cast<int>(T), static_cast<int>(D), kd, q_norm, k_norm,
                         stream.stream());
    }
    dispatch_dtype(vc.scalar_type(), [&](auto tag) {
        using scalar_t = decltype(tag);
        ForwardParams<scalar_t> p;
        p.q = qc.data_ptr<scalar_t>();
        p.k = kc.data_ptr<scalar_t>();
        p.v = vc.data_ptr<scalar_t>();
        p.log_sigma = ls.data_ptr<float>();
        p.out = r.out.data_ptr<scalar_t>();
        p.out_f32 = r.out_f32.defined() ? r.out_f32.data_ptr<float>() : nullptr;
        p.threshold = r.threshold.defined()
                          ? reinterpret_cast<uint2*>(r.threshold.data_ptr<int32_t>())
                          : nullptr;
        p.lse = r.lse.defined() ? reinterpret_cast<float2*>(r.lse.data_ptr<float>()) : nullptr;
        p.scores = workspace.defined() ? workspace.data_ptr<float>() : nullptr;
        p.q_norm = q_norm;
        p.k_norm = k_norm;
        p.lq = layout_of(qc);
        p.lk = layout_of(kc);
        p.lv = layout_of(vc);
        p.lo = layout_of(r.out);
        p.B = static_cast<int>(B);
        p.H = static_cast<int>(H);
        p.T = static_cast<int>(T);
        p.D = static_cast<int>(D);
        p.W = W;
        p.K = K;
        p.wide = rows_16_byte({&qc, &kc, &vc});
        p.n_qtiles = n_qtiles;
        p.n_tiles = n_tiles;
        p.n_cols = n_cols;
        launch_forward(p, kd, mma, in_shared, grid, bytes, stream.stream());
    });
    return r;
}

// The backward op's one tensor-facing function: writes dq, dk, dv (B, H, T, D views of one
// layout, e.g. the thirds of one fused gradient) and returns d log_sigma (H) in fp32.
// out_f32: the forward output in fp32; tensor_cores: how the forward formed the scores, and
// norms: its row norms (ForwardResult).
at::Tensor krause_backward(const at::Tensor& dout, const at::Tensor& q, const at::Tensor& k,
                           const at::Tensor& v, const at::Tensor& out_f32,
                           const at::Tensor& log_sigma, const at::Tensor& threshold,
                           const at::Tensor& lse, const at::Tensor& norms, int64_t window,
                           bool tensor_cores, at::Tensor& dq, at::Tensor& dk, at::Tensor& dv) {
    TORCH_CHECK(dout.sizes() == q.sizes(), "krause_attention_cuda backward: grad shape ",
                dout.sizes(), " differs from ", q.sizes());
    TORCH_CHECK(out_f32.scalar_type() == at::kFloat && threshold.scalar_type() == at::kInt &&
                    lse.scalar_type() == at::kFloat && threshold.is_contiguous() &&
                    lse.is_contiguous(),
                "krause_attention_cuda backward: saved tensors have unexpected dtypes");
    TORCH_CHECK(dout.device() == q.device(), "krause_attention_cuda backward: grad on ",
                dout.device(), ", inputs on ", q.device());
    const Layout ld = layout_of(dq);
    TORCH_INTERNAL_ASSERT(dk.strides() == dq.strides() && dv.strides() == dq.strides());
    const c10::cuda::CUDAGuard guard(q.device());
    const auto qc = rows_readable(q), kc = rows_readable(k), vc = rows_readable(v);
    const auto gc = rows_readable(dout.to(q.scalar_type()));
    const auto oc = rows_readable(out_f32);
    const auto ls = log_sigma.to(at::kFloat).contiguous();  // (H)

    const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3);
    const int W = static_cast<int>(std::min(window, std::max<int64_t>(T, 1)));
    const int n_qtiles = static_cast<int>((T + kTile - 1) / kTile);
    const int n_tiles = checked_int(B * H * n_qtiles, "tiles");
    const int n_cols = (kTile + W - 1 + kTile - 1) / kTile * kTile;
    const int kd = padded_head_dim(D);

    TORCH_CHECK(!tensor_cores || (norms.scalar_type() == at::kFloat && norms.is_contiguous() &&
                                  norms.numel() == 2 * B * H * T),
                "krause_attention_cuda backward: the forward's row norms are missing");
    // What the query pass hands its key pass: delta on CUDA cores, each query's 16-byte record
    // on tensor cores (BackwardParams::query_stats; the forward ran there, so the backward does).
    const auto delta = at::empty({tensor_cores ? 0 : B * H * T}, q.options().dtype(at::kFloat));
    const auto query_stats = at::empty({tensor_cores ? B * H * T * 4 : 0},
                                       q.options().dtype(at::kFloat));
    // Every query tile writes its partial sum of d log_sigma (so no zero fill); launch_backward
    // reduces them per head into dls.
    const auto parts = at::empty({B, H, n_qtiles}, q.options().dtype(at::kDouble));
    if (n_tiles == 0) return at::zeros({H}, q.options().dtype(at::kFloat));
    const auto dls = at::empty({H}, q.options().dtype(at::kFloat));
    const auto stream = at::cuda::getCurrentCUDAStream();
    dispatch_dtype(qc.scalar_type(), [&](auto tag) {
        using scalar_t = decltype(tag);
        BackwardParams<scalar_t> p;
        p.q = qc.data_ptr<scalar_t>();
        p.k = kc.data_ptr<scalar_t>();
        p.v = vc.data_ptr<scalar_t>();
        p.out = oc.data_ptr<float>();
        p.dout = gc.data_ptr<scalar_t>();
        p.log_sigma = ls.data_ptr<float>();
        p.threshold = reinterpret_cast<const uint2*>(threshold.data_ptr<int32_t>());
        p.lse = reinterpret_cast<const float2*>(lse.data_ptr<float>());
        p.delta = delta.data_ptr<float>();
        p.query_stats = reinterpret_cast<float4*>(query_stats.data_ptr<float>());
        p.dq = dq.data_ptr<scalar_t>();
        p.dk = dk.data_ptr<scalar_t>();
        p.dv = dv.data_ptr<scalar_t>();
        p.dlog_sigma = parts.data_ptr<double>();
        p.dlog_sigma_sum = dls.data_ptr<float>();
        p.q_norm = tensor_cores ? norms.data_ptr<float>() : nullptr;
        p.k_norm = tensor_cores ? norms.data_ptr<float>() + B * H * T : nullptr;
        p.lq = layout_of(qc);
        p.lk = layout_of(kc);
        p.lv = layout_of(vc);
        p.lo = layout_of(oc);
        p.lg = layout_of(gc);
        p.ld = ld;
        p.B = static_cast<int>(B);
        p.H = static_cast<int>(H);
        p.T = static_cast<int>(T);
        p.D = static_cast<int>(D);
        p.W = W;
        p.wide = rows_16_byte({&qc, &kc, &vc, &gc});
        p.n_qtiles = n_qtiles;
        p.n_tiles = n_tiles;
        p.n_cols = n_cols;
        launch_backward(p, kd, tensor_cores, stream.stream());
    });
    return dls;
}

// q, k, v (B, H, T, D) as separate tensors.
class KrauseAttentionFunction : public torch::autograd::Function<KrauseAttentionFunction> {
public:
    static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& q,
                              const at::Tensor& k, const at::Tensor& v,
                              const at::Tensor& log_sigma, int64_t window, int64_t top_k,
                              bool tensor_cores) {
        auto r = krause_forward(q, k, v, log_sigma, window, top_k, tensor_cores,
                                /*for_backward=*/true);
        const auto out_f32 = r.out_f32.defined() ? r.out_f32 : r.out;
        ctx->save_for_backward({q, k, v, log_sigma, out_f32, r.threshold, r.lse, r.norms});
        ctx->saved_data["window"] = window;
        ctx->saved_data["tensor_cores"] = r.tensor_cores;
        return r.out;
    }

    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                   torch::autograd::variable_list grads) {
        const auto saved = ctx->get_saved_variables();
        const auto& q = saved[0];
        const auto& log_sigma = saved[3];
        if (!grads[0].defined()) {
            return {at::zeros_like(q),         at::zeros_like(q), at::zeros_like(q),
                    at::zeros_like(log_sigma), at::Tensor(),      at::Tensor(),
                    at::Tensor()};
        }
        // Heads last, like the forward output: the gradient of split heads is then a free view.
        auto dq = empty_heads_last(q, q.scalar_type());
        auto dk = empty_heads_last(q, q.scalar_type());
        auto dv = empty_heads_last(q, q.scalar_type());
        const auto dls = krause_backward(grads[0], q, saved[1], saved[2], saved[4], log_sigma,
                                         saved[5], saved[6], saved[7],
                                         ctx->saved_data["window"].toInt(),
                                         ctx->saved_data["tensor_cores"].toBool(), dq, dk, dv);
        return {dq, dk, dv, dls.to(log_sigma.scalar_type()), at::Tensor(), at::Tensor(),
                at::Tensor()};
    }
};

// q, k, v as the thirds of one fused projection (B, T, 3 * H * D): the kernels read them in place
// and write their gradients into one (B, T, 3 * H * D) tensor, so no head is ever transposed.
class KrausePackedFunction : public torch::autograd::Function<KrausePackedFunction> {
public:
    static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& qkv,
                              const at::Tensor& log_sigma, int64_t heads, int64_t window,
                              int64_t top_k, bool tensor_cores) {
        const auto x = qkv.contiguous();
        const auto parts = unpack_qkv(x, heads);
        auto r = krause_forward(parts[0], parts[1], parts[2], log_sigma, window, top_k,
                                tensor_cores, /*for_backward=*/true);
        const auto out_f32 = r.out_f32.defined() ? r.out_f32 : r.out;
        ctx->save_for_backward({x, log_sigma, out_f32, r.threshold, r.lse, r.norms});
        ctx->saved_data["heads"] = heads;
        ctx->saved_data["window"] = window;
        ctx->saved_data["tensor_cores"] = r.tensor_cores;
        return merge_heads(r.out);
    }

    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                   torch::autograd::variable_list grads) {
        const auto saved = ctx->get_saved_variables();
        const auto& x = saved[0];
        const auto& log_sigma = saved[1];
        if (!grads[0].defined()) {
            return {at::zeros_like(x), at::zeros_like(log_sigma), at::Tensor(),
                    at::Tensor(),      at::Tensor(),              at::Tensor()};
        }
        const int64_t heads = ctx->saved_data["heads"].toInt();
        const auto parts = unpack_qkv(x, heads);
        const auto& q = parts[0];
        const auto dout = grads[0]
                              .reshape({q.size(0), q.size(2), q.size(1), q.size(3)})
                              .transpose(1, 2);  // (B, H, T, D)
        auto dqkv = at::empty_like(x);
        auto d = unpack_qkv(dqkv, heads);
        const auto dls = krause_backward(dout, q, parts[1], parts[2], saved[2], log_sigma,
                                         saved[3], saved[4], saved[5],
                                         ctx->saved_data["window"].toInt(),
                                         ctx->saved_data["tensor_cores"].toBool(), d[0], d[1],
                                         d[2]);
        return {dqkv, dls.to(log_sigma.scalar_type()), at::Tensor(), at::Tensor(), at::Tensor(),
                at::Tensor()};
    }
};

bool needs_grad(std::initializer_list<const at::Tensor*> inputs) {
    if (!at::GradMode::is_enabled()) return false;
    for (const auto* t : inputs) {
        if (t->requires_grad()) return true;
    }
    return false;
}

}  // namespace

at::Tensor krause_attention_cuda(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                 const at::Tensor& log_sigma, int64_t window, int64_t top_k,
                                 bool tensor_cores) {
    if (!needs_grad({&q, &k, &v, &log_sigma})) {
        return krause_forward(q, k, v, log_sigma, window, top_k, tensor_cores, false).out;
    }
    return KrauseAttentionFunction::apply(q, k, v, log_sigma, window, top_k, tensor_cores);
}

at::Tensor krause_attention_packed_cuda(const at::Tensor& qkv, int64_t heads,
                                        const at::Tensor& log_sigma, int64_t window,
                                        int64_t top_k, bool tensor_cores) {
    TORCH_CHECK(qkv.dim() == 3 && heads >= 1 && qkv.size(2) % (3 * heads) == 0,
                "krause_attention_packed_cuda: qkv must be (B, T, 3 * H * D) with H = ", heads,
                ", got ", qkv.sizes());
    if (!needs_grad({&qkv, &log_sigma})) {
        const auto parts = unpack_qkv(qkv, heads);
        return merge_heads(krause_forward(parts[0], parts[1], parts[2], log_sigma, window, top_k,
                                          tensor_cores, false)
                               .out);
    }
    return KrausePackedFunction::apply(qkv, log_sigma, heads, window, top_k, tensor_cores);
}

}  // namespace krause
