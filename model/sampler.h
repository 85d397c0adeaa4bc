// Batched ancestral sampling and completion with progress callbacks and a stop flag.
#pragma once

#include "model/transformer.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

namespace krause {

// The arithmetic of sampling. Auto: bf16 weights and caches on a GPU (the precision the GPU
// trains in), the model's own on the CPU. Float32 keeps the model's own on a GPU too. Float8:
// BFloat16 with the Krause ring buffers in fp8 (e4m3), which halves the bytes each step reads
// and rounds every cached key and value to 3 mantissa bits (GPU, Device or Graph loop; the
// other attention kinds keep bf16 caches).
enum class SamplePrecision { Auto, Float32, BFloat16, Float8 };
// "auto" | "fp32" | "bf16" | "fp8"; anything else throws std::invalid_argument naming it.
SamplePrecision parse_sample_precision(const std::string& name);

// How the decode loop runs. Auto: Graph on a GPU, Host on the CPU.
//   Host:   the position lives on the host and every step narrows the caches to it (the
//           reference, and the fastest loop on a CPU).
//   Device: the position lives on the device (PixelTransformer::decode_step_at) and every step
//           launches the same work.
//   Graph:  Device with one step captured as a CUDA graph and replayed (GPU only).
enum class DecodeLoop { Auto, Host, Device, Graph };
// "auto" | "host" | "device" | "graph"; anything else throws std::invalid_argument naming it.
DecodeLoop parse_decode_loop(const std::string& name);

struct SampleOptions {
    int64_t count = 16;
    double temperature = 1.0;  // > 0; logits are divided by it
    uint64_t seed = 0;
    // Optional prompt: (P) shared by every sample, or (count, P), P <= T; kept verbatim.
    at::Tensor prefix;
    // Stop once this many sub-pixels per image are known (0: all T).
    int64_t until = 0;
    // Called with the number of sub-pixels now known (1..T) and the tokens (count, T) so far
    // (uint8, CPU; unknown ones are 0): after every position on the Host loop; on the Device
    // and Graph loops, which run ahead of the host, about every 40 ms and at the end.
    std::function<void(int64_t filled, const at::Tensor& tokens)> on_token;
    // Checked between tokens; when set, sampling returns what it has.
    const std::atomic<bool>* stop = nullptr;
    SamplePrecision precision = SamplePrecision::Auto;
    DecodeLoop loop = DecodeLoop::Auto;
};

struct SampleResult {
    at::Tensor tokens;    // (count, T) uint8 on the CPU
    int64_t filled = 0;   // sub-pixels known per image; T unless stopped
    bool stopped = false;
};

// Draws x[0] from the prior (unless given), then each next sub-pixel from softmax(logits / t).
// Random numbers come from a CPU generator seeded with `seed`: a seed gives the same images on
// one machine, and every loop draws the same numbers (the loops differ only in rounding).
SampleResult sample(PixelTransformer& model, const SampleOptions& options);

// The Device and Graph loops behind sample(); `prefix` is validated (n, P) int64 on the CPU, or
// undefined. Defined in model/sampler_replay.cpp.
SampleResult sample_replayed(PixelTransformer& model, const SampleOptions& options,
                             const at::Tensor& prefix, bool graph);

// Tokens drawn from softmax(logits / temperature) with the uniforms u: logits (N, 256),
// u (N) in [0, 1) -> (N) int64, on the device of the logits.
at::Tensor draw_tokens(const at::Tensor& logits, double temperature, const at::Tensor& u);

// Index of the first category whose cumulative probability exceeds u, per row.
// probs (N, C) non-negative rows (need not be normalised), u (N) in [0, 1).
at::Tensor sample_categorical(const at::Tensor& probs, const at::Tensor& u);

}  // namespace krause
