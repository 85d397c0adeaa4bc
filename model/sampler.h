// Batched ancestral sampling and completion with progress callbacks and a stop flag.
#pragma once

#include "model/transformer.h"

#include <atomic>
#include <cstdint>
#include <functional>

namespace krause {

struct SampleOptions {
    int64_t count = 16;
    double temperature = 1.0;  // > 0; logits are divided by it
    uint64_t seed = 0;
    // Optional prompt: (P) shared by every sample, or (count, P), P <= T; kept verbatim.
    at::Tensor prefix;
    // Called after each generated position with the number of sub-pixels now known (1..T) and
    // the tokens (count, T) so far (uint8, CPU; unknown ones are 0).
    std::function<void(int64_t filled, const at::Tensor& tokens)> on_token;
    // Checked between tokens; when set, sampling returns what it has.
    const std::atomic<bool>* stop = nullptr;
};

struct SampleResult {
    at::Tensor tokens;    // (count, T) uint8 on the CPU
    int64_t filled = 0;   // sub-pixels known per image; T unless stopped
    bool stopped = false;
};

// Draws x[0] from the prior (unless given), then each next sub-pixel from softmax(logits / t).
// Random numbers come from a CPU generator seeded with `seed`, so a seed gives the same images.
SampleResult sample(PixelTransformer& model, const SampleOptions& options);

// Index of the first category whose cumulative probability exceeds u, per row.
// probs (N, C) non-negative rows (need not be normalised), u (N) in [0, 1).
at::Tensor sample_categorical(const at::Tensor& probs, const at::Tensor& u);

}  // namespace krause
