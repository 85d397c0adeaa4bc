// Plain results of attention probes, free of LibTorch so that front ends can hold them.
#pragma once

#include <cstdint>
#include <vector>

namespace krause {

// Positions here are network positions: query p consumes x[p] and predicts x[p + 1], and key j
// is x[j]. So probing "sub-pixel i" (i >= 1) means query p = i - 1 over sub-pixels 0..i-1.
struct LayerMeasures {
    double sink_mass = 0;       // weight on position 0 (queries p >= 1)
    double oldest_key = 0;      // weight on the oldest key of the window, max(0, p - W + 1)
    double max_weight = 0;      // weight of the single largest key
    double entropy = 0;         // -sum w ln w, nats
    double keys_for_90 = 0;     // fewest keys that together hold >= 90% of the mass
};

struct ProbedQuery {
    int64_t position = 0;
    // [layer][head]: dense weights over keys 0..position (length position + 1).
    std::vector<std::vector<std::vector<float>>> weights;
    // [layer][head]: the keys attended to (Krause: the kept top-K of the window), ascending.
    std::vector<std::vector<std::vector<int32_t>>> selected;
};

struct ProbeResult {
    int64_t n_layers = 0;
    int64_t n_heads = 0;
    int64_t window = 0;  // the Krause window; T for softmax and linear
    std::vector<ProbedQuery> queries;
    std::vector<LayerMeasures> at_queries;  // per layer, over the probed queries and heads
    std::vector<LayerMeasures> over_image;  // per layer, over every query p >= 1 and head
};

}  // namespace krause
