// Fused kernels checked against their ATen references on given inputs: the error measure and the
// tolerance rule of the design (fused error against fp64 at most twice the ATen path's in the
// same precision, plus a floor), shared by the tests and by `krause bench`, which validates a
// kernel on its own inputs before it times it.
#pragma once

#include "model/kernels.h"

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace krause {

// ||x - exact|| / ||exact|| over rows (the last dim), or ||x|| where the exact answer is zero.
// Top-K is discontinuous: where the K-th and (K+1)-th scores of a window agree to rounding either
// path may pick the other key, which moves that row by far more than rounding. Such rows are
// rare (about one in 1e4 at the preset shapes), so of tensors with >= 1000 rows the worst 0.1%
// rows are left out.
double relative_error(const at::Tensor& x, const at::Tensor& exact);

// The floor of the rule: a few fp32 units in the last place, and for 16-bit inputs (whose
// rounding alone is ~1e-3) a thousandth of that.
double kernel_error_floor(at::ScalarType type);

// d log_sigma adds ds * log p over every (query, key) pair of a head. The kernels sum it per
// thread in fp32 across key chunks where ATen reduces a tree, so at long windows their error can
// pass twice ATen's (seen up to 1.4e-5 at W = 1500, against 1e-7 to 4e-6). And unlike the other
// outputs it has no rows to leave out: one top-K flip anywhere moves it, by up to 1.7e-4 at the
// mnist shape (seen in the ATen path itself against fp64, and 2e-5 to 5e-5 in the kernels' fp32
// runs). Its floor is therefore this, far below anything that matters for training; a wrong
// gradient is off by order 1.
constexpr double kDlogSigmaFloor = 3e-4;

// f's output and its gradients with respect to fresh leaf copies of `inputs`, for the upstream
// gradient g (cast to the output's dtype): the values a fused path and its reference are compared
// on.
std::vector<at::Tensor> value_and_grads(
    const std::function<at::Tensor(const std::vector<at::Tensor>&)>& f,
    const std::vector<at::Tensor>& inputs, const at::Tensor& g);

// One compared output: the fused path's and the ATen path's error against fp64, and the bound.
struct KernelCheck {
    std::string what;  // "out", "dq", ...
    double fused = 0, aten = 0, bound = 0;
    bool ok() const { return fused <= bound; }
};

// The fused Krause attention (forward, and backward for dout) on q, k, v (B, H, T, D) against
// the windowed ATen path in the inputs' precision and in fp64: the kernels `kernels` chooses for
// these inputs. Returns nothing where that choice is the ATen path (no GPU, no kernels built).
// Queries whose K-th and (K+1)-th scores agree to 1e-5 of the K-th (krause_kth_gap; 1e-12 for
// fp64) are left out: either path may keep either key there, and one such flip moves dk in K
// rows and d log_sigma beyond the rule (at the bench's shape in about 1.5% of random inputs).
// Their upstream gradient is zero in all three runs and their output rows are not compared.
std::vector<KernelCheck> check_krause_fused(const at::Tensor& q, const at::Tensor& k,
                                            const at::Tensor& v, const at::Tensor& log_sigma,
                                            const at::Tensor& dout, int64_t window, int64_t top_k,
                                            const KernelOptions& kernels = {});

// The fused decoding step (q (B, H, 1, D) over the rings (B, H, S, D) at `position`) against
// krause_decode_ring in the rings' precision and in fp64, with kernels.decode_warps. Empty where
// `kernels` chooses the ATen step. On a GPU also the replayable step with key norms ("decode
// step") and the rings rounded to fp8 bytes ("decode fp8": the references read the values those
// bytes hold, q in bf16 as the kernel reads it).
std::vector<KernelCheck> check_krause_decode(const at::Tensor& q, const at::Tensor& ring_keys,
                                             const at::Tensor& ring_values, int64_t position,
                                             const at::Tensor& log_sigma, int64_t top_k,
                                             const KernelOptions& kernels = {});

// The value of an fp8 e4m3 byte, the element of fp8 ring buffers: sign, 4 exponent bits of bias
// 7, 3 mantissa bits, subnormals below 2^-6, no infinities; 0x7f and 0xff are NaN.
float e4m3_value(uint8_t byte);

// x's elements as e4m3 bytes (kByte, x's shape, on x's device): each the byte of a nearest finite
// e4m3 value (either one at a tie), saturating at +-448. Inputs for checks; the kernels round on
// store themselves.
at::Tensor e4m3_bytes(const at::Tensor& x);

// "out 1.2e-03 <= 2.5e-03, dq ..." for messages.
std::string describe(const std::vector<KernelCheck>& checks);

}  // namespace krause
