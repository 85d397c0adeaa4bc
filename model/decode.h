// Per-layer caches for token-by-token decoding.
#pragma once

#include <ATen/ATen.h>

#include <vector>

namespace krause {

// What one attention layer remembers between decode steps.
//   Krause:  keys/values are ring buffers (B, H, W, D); the key of position t sits in slot t mod W.
//   softmax: keys/values are preallocated (B, H, T, D) caches.
//   linear:  state (B, H, D, D) = sum phi(k) v^T and norm (B, H, D) = sum phi(k).
struct LayerCache {
    at::Tensor keys;
    at::Tensor values;
    // Krause, where the fused CUDA decode step forms its distances on tensor cores
    // (krause_decode_uses_key_norms): the squared norm of each ring key as stored, (B, H, W) fp32.
    // Undefined once a host-position step has stored a key.
    at::Tensor key_norms;
    at::Tensor state;
    at::Tensor norm;
    // The q, k and v projections stacked, (3 d, d) and (3 d), taken when the cache is made: one
    // matrix product per step instead of three.
    at::Tensor qkv_weight;
    at::Tensor qkv_bias;
};

struct DecodeState {
    std::vector<LayerCache> layers;
    int64_t batch = 0;
    int64_t position = 0;  // the network position the next decode step consumes
};

}  // namespace krause
