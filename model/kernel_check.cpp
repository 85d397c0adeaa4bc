// The tolerance rule of the fused kernels, applied to given inputs (tests and the bench).
#include "model/kernel_check.h"

#include "model/attention.h"
#include "model/krause_attention_cpu.h"
#ifdef KRAUSE_WITH_CUDA
#include "model/krause_attention_cuda.h"
#endif

#include <fmt/format.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <tuple>

namespace krause {

double relative_error(const at::Tensor& x, const at::Tensor& exact) {
    const auto e = exact.to(at::kDouble);
    auto err = (x.to(at::kDouble) - e).pow(2);
    auto ref = e.pow(2);
    if (e.dim() >= 2) {
        err = err.sum(-1).flatten();  // per row
        ref = ref.sum(-1).flatten();
        const int64_t drop = err.numel() / 1000;
        if (drop > 0) {
            const auto kept = std::get<1>(err.topk(err.numel() - drop, 0, /*largest=*/false));
            err = err.index_select(0, kept);
            ref = ref.index_select(0, kept);
        }
    }
    const double num = std::sqrt(err.sum().item<double>());
    const double den = std::sqrt(ref.sum().item<double>());
    return den > 0.0 ? num / den : num;
}

double kernel_error_floor(at::ScalarType type) { return type == at::kFloat ? 3e-7 : 3e-6; }

std::string describe(const std::vector<KernelCheck>& checks) {
    std::string out;
    for (const auto& c : checks) {
        if (!out.empty()) out += ", ";
        out += fmt::format("{} {:.2e} {} {:.2e}", c.what, c.fused, c.ok() ? "<=" : ">", c.bound);
    }
    return out;
}

std::vector<at::Tensor> value_and_grads(
    const std::function<at::Tensor(const std::vector<at::Tensor>&)>& f,
    const std::vector<at::Tensor>& inputs, const at::Tensor& g) {
    std::vector<at::Tensor> leaves;
    for (const auto& t : inputs) leaves.push_back(t.detach().requires_grad_(true));
    const auto out = f(leaves);
    auto grads = torch::autograd::grad({out}, leaves, {g.to(out.scalar_type())});
    grads.insert(grads.begin(), out.detach());
    return grads;
}

std::vector<KernelCheck> check_krause_fused(const at::Tensor& q, const at::Tensor& k,
                                            const at::Tensor& v, const at::Tensor& log_sigma,
                                            const at::Tensor& dout, int64_t window, int64_t top_k,
                                            const KernelOptions& kernels) {
    std::vector<KernelCheck> checks;
    if (krause_path(kernels, q, window) == KrausePath::Aten) return checks;
    const auto type = q.scalar_type();
    auto windowed = [&](const std::vector<at::Tensor>& x) {
        return krause_attention_windowed(x[0], x[1], x[2], x[3], window, top_k);
    };
    auto fused = [&](const std::vector<at::Tensor>& x) {
        return krause_attention(x[0], x[1], x[2], x[3], window, top_k, kernels);
    };
    const std::vector<at::Tensor> inputs{q, k, v, log_sigma};
    std::vector<at::Tensor> wide;
    for (const auto& t : inputs) wide.push_back(t.to(at::kDouble));
    // Queries whose K-th and (K+1)-th scores agree to within what a path in the inputs'
    // precision rounds them to may keep either key, in either path: the flip moves the query's
    // row and, through delta = dO . O, the gradient of every key it keeps (K rows of dk), and d
    // log_sigma, by far more than rounding. Those queries are left out: their upstream gradient
    // is zero in all three runs, and their output rows are the exact ones in both compared runs.
    const double ambiguous = type == at::kDouble ? 1e-12 : 1e-5;  // of the K-th score
    const auto unsure =
        krause_kth_gap(wide[0], wide[1], wide[3], window, top_k).lt(ambiguous).unsqueeze(-1);
    const auto g = dout.masked_fill(unsure, 0.0);
    const auto exact = value_and_grads(windowed, wide, g.to(at::kDouble));
    auto aten = value_and_grads(windowed, inputs, g);
    auto mine = value_and_grads(fused, inputs, g);
    aten[0] = at::where(unsure, exact[0], aten[0].to(at::kDouble));
    mine[0] = at::where(unsure, exact[0], mine[0].to(at::kDouble));
    const char* names[] = {"out", "dq", "dk", "dv", "dlog_sigma"};
    for (size_t i = 0; i < exact.size(); ++i) {
        KernelCheck c{names[i], relative_error(mine[i], exact[i]),
                      relative_error(aten[i], exact[i]), 0.0};
        c.bound = 2.0 * c.aten + (i == 4 ? kDlogSigmaFloor : kernel_error_floor(type));
        checks.push_back(c);
    }
    return checks;
}

float e4m3_value(uint8_t byte) {
    const int exponent = (byte >> 3) & 15, mantissa = byte & 7;
    if ((byte & 0x7f) == 0x7f) return std::nanf("");
    const float magnitude = exponent == 0 ? std::ldexp(mantissa / 8.f, -6)
                                          : std::ldexp(1.f + mantissa / 8.f, exponent - 7);
    return byte & 0x80 ? -magnitude : magnitude;
}

namespace {

// e4m3_value of every byte, by byte.
std::vector<float> e4m3_values() {
    std::vector<float> all(256);
    for (int b = 0; b < 256; ++b) all[b] = e4m3_value(static_cast<uint8_t>(b));
    return all;
}

}  // namespace

at::Tensor e4m3_bytes(const at::Tensor& x) {
    // The finite values in ascending order (one zero), with their bytes.
    static const auto table = [] {
        const auto all = e4m3_values();
        std::vector<std::pair<float, int64_t>> finite;
        for (int b = 0; b < 256; ++b) {
            if (b != 0x80 && (b & 0x7f) != 0x7f) finite.emplace_back(all[b], b);
        }
        std::sort(finite.begin(), finite.end());
        std::vector<float> values;
        std::vector<int64_t> bytes;
        for (const auto& [v, b] : finite) values.push_back(v), bytes.push_back(b);
        return std::make_pair(values, bytes);
    }();
    const auto on = at::TensorOptions().device(x.device());
    const auto n = static_cast<int64_t>(table.first.size());
    const auto values = at::tensor(table.first, on.dtype(at::kFloat));
    const auto bytes = at::tensor(table.second, on.dtype(at::kLong));
    const auto flat = x.to(at::kFloat).contiguous().view(-1).clamp(-448.0, 448.0);
    const auto above = at::searchsorted(values, flat).clamp_max(n - 1);  // first value >= x
    const auto below = (above - 1).clamp_min(0);
    const auto nearer_below = (flat - values.index_select(0, below)).abs() <
                              (values.index_select(0, above) - flat).abs();
    const auto pick = at::where(nearer_below, below, above);
    return bytes.index_select(0, pick).to(at::kByte).view(x.sizes());
}

std::vector<KernelCheck> check_krause_decode(const at::Tensor& q, const at::Tensor& ring_keys,
                                             const at::Tensor& ring_values, int64_t position,
                                             const at::Tensor& log_sigma, int64_t top_k,
                                             const KernelOptions& kernels) {
    std::vector<KernelCheck> checks;
    const DecodePath path = krause_decode_path(kernels, q);
    if (path == DecodePath::Aten || ring_keys.scalar_type() == at::kByte) return checks;
    auto d = [](const at::Tensor& t) { return t.to(at::kDouble); };
    const auto exact =
        krause_decode_ring(d(q), d(ring_keys), d(ring_values), position, d(log_sigma), top_k);
    const auto aten = krause_decode_ring(q, ring_keys, ring_values, position, log_sigma, top_k);
    at::Tensor mine;
    if (const auto loops = cpu_loops_of(path)) {
        mine = krause_decode_ring_cpu(q, ring_keys, ring_values, position, log_sigma, top_k,
                                      *loops);
    } else {
#ifdef KRAUSE_WITH_CUDA
        mine = krause_decode_cuda(q, ring_keys, ring_values, position, log_sigma, top_k,
                                  kernels.decode_warps);
#endif
    }
    KernelCheck c{"decode", relative_error(mine, exact), relative_error(aten, exact), 0.0};
    c.bound = 2.0 * c.aten + kernel_error_floor(ring_keys.scalar_type());
    checks.push_back(c);
#ifdef KRAUSE_WITH_CUDA
    if (path == DecodePath::Fused) {
        // The replayable step with key norms, as sampling runs it (tensor cores where the ring
        // allows): it stores slot position % S again with that slot's own key and value, so it
        // reads the rings given.
        const int64_t slot = position % ring_keys.size(2);
        auto keys = ring_keys.clone(at::MemoryFormat::Contiguous);
        auto values = ring_values.clone(at::MemoryFormat::Contiguous);
        const auto k = keys.narrow(2, slot, 1).clone(), v = values.narrow(2, slot, 1).clone();
        const auto norms = keys.to(at::kFloat).pow(2).sum(-1).contiguous();
        const auto pos = at::full({1}, position, q.options().dtype(at::kLong));
        const auto step = krause_decode_step_cuda(q.to(keys.scalar_type()), k, v, keys, values,
                                                  pos, log_sigma, top_k, kernels.decode_warps,
                                                  norms);
        // Its result is rounded to the ring's dtype: the bound adds twice what that rounding
        // costs the exact result.
        const double rounding = relative_error(exact.to(step.scalar_type()), exact);
        checks.push_back(
            {"decode step", relative_error(step, exact), c.aten, c.bound + 2.0 * rounding});

        // fp8 rings, as `--precision fp8` samples with: the references in fp32 and fp64 on the
        // values the bytes hold.
        const auto key_bytes = e4m3_bytes(ring_keys), value_bytes = e4m3_bytes(ring_values);
        const auto of_byte = at::tensor(e4m3_values(), q.options().dtype(at::kFloat));
        auto held = [&](const at::Tensor& b) {
            return of_byte.index_select(0, b.to(at::kLong).view(-1)).view(b.sizes());
        };
        const auto q16 = q.to(at::kBFloat16);
        const auto keys8 = held(key_bytes), values8 = held(value_bytes);
        const auto f = [](const at::Tensor& t) { return t.to(at::kFloat); };
        const auto exact8 = krause_decode_ring(d(q16), d(keys8), d(values8), position,
                                               d(log_sigma), top_k);
        const auto aten8 =
            krause_decode_ring(f(q16), keys8, values8, position, f(log_sigma), top_k);
        const auto mine8 = krause_decode_cuda(q16, key_bytes, value_bytes, position, log_sigma,
                                              top_k, kernels.decode_warps);
        KernelCheck c8{"decode fp8", relative_error(mine8, exact8), relative_error(aten8, exact8),
                       0.0};
        c8.bound = 2.0 * c8.aten + kernel_error_floor(at::kBFloat16);
        checks.push_back(c8);
    }
#endif
    return checks;
}

}  // namespace krause
