// Plain results of the token-dynamics measures (the residual stream read as interacting
// particles), free of LibTorch so that front ends can hold them.
#pragma once

#include "model/probe_types.h"

#include <cstdint>
#include <vector>

namespace krause {

// The cluster threshold eps is each of these fractions of the layer's median pairwise distance.
inline std::vector<double> default_eps_fractions() {
    return {0.25, 0.5, 0.75};
}

// Measures of one set of token states X (T tokens of dimension d).
struct StateMeasures {
    double cosine = 0;             // mean cosine similarity over pairs i != j (1 under collapse)
    double consensus = 0;          // ||X - 1 mean(X)||_F / ||X||_F (0 when all tokens are equal)
    double effective_rank = 0;     // exp(entropy of the normalised singular values of X - mean)
    double median_distance = 0;    // the lower median of the pairwise distances ||x_i - x_j||
    std::vector<double> clusters;  // per eps fraction: connected components at that eps
};

struct DynamicsMeasures {
    int64_t images = 0;  // images averaged over
    std::vector<double> eps_fractions;
    std::vector<StateMeasures> states;     // L + 1: after the embedding, then after each block
    std::vector<LayerMeasures> attention;  // L: the attention measures of each block
};

// The token states of one image projected onto two principal axes fitted once over all layers,
// so that positions are comparable across depth.
struct Particles {
    int64_t layers = 0;  // L + 1 state sets
    int64_t tokens = 0;  // T - 1 network positions
    int64_t height = 0, width = 0, channels = 0;
    std::vector<float> xy;        // layers * tokens * 2
    std::vector<uint8_t> inputs;  // tokens: the sub-pixel each position consumes, x[p]
    double explained = 0;         // fraction of the variance the two axes hold
    float x(int64_t layer, int64_t token) const { return xy[(layer * tokens + token) * 2]; }
    float y(int64_t layer, int64_t token) const { return xy[(layer * tokens + token) * 2 + 1]; }
};

}  // namespace krause
