// Small helpers shared by the test suites: tiny configs and tensor comparisons.
#pragma once

#include "model/config.h"

#include <ATen/ATen.h>

#include <cstdlib>
#include <string>

namespace krause::test {

inline ModelConfig tiny_config(AttentionKind kind, int64_t h = 6, int64_t w = 6, int64_t c = 1) {
    ModelConfig m;
    m.image_height = h;
    m.image_width = w;
    m.image_channels = c;
    m.d_model = 32;
    m.n_heads = 4;
    m.n_layers = 2;
    m.attention = kind;
    m.window = 8;
    m.top_k = 5;
    m.dropout = 0.0;
    return m;
}

inline double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
    return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

// The real data folder (holding mnist/ and cifar-10/), or "" when KRAUSE_DATA_DIR is unset.
inline std::string data_dir() {
    const char* dir = std::getenv("KRAUSE_DATA_DIR");
    return dir ? std::string(dir) : std::string();
}

}  // namespace krause::test
