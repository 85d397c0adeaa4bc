// Attention probes: which earlier sub-pixels each layer and head attended to, and the measures
// of KRAUSE.md (sink mass, oldest-key weight, largest weight, entropy, keys holding 90%).
#pragma once

#include "model/probe_types.h"
#include "model/transformer.h"

#include <vector>

namespace krause {

// image: (T) tokens. query_positions in 0..T-2. With image_measures, also averages the measures
// over every query of the image (cost O(T^2 H) per layer, done in blocks of queries).
ProbeResult probe_attention(PixelTransformer& model, const at::Tensor& image,
                            const std::vector<int64_t>& query_positions, bool image_measures = true);

// Per-layer measures averaged over a batch of images (B, T), every query p >= 1 and every head.
std::vector<LayerMeasures> attention_measures(PixelTransformer& model, const at::Tensor& images);

}  // namespace krause
