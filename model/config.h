// ModelConfig: the shape of a pixel Transformer, its presets, and its JSON form.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace krause {

enum class AttentionKind { Krause, Softmax, Linear };

std::string to_string(AttentionKind kind);
// The names of every kind, in enum order: the one list that help texts and menus show.
std::vector<std::string> attention_names();
// Throws std::invalid_argument naming the accepted values.
AttentionKind parse_attention_kind(const std::string& name);

struct ModelConfig {
    int64_t image_height = 28;
    int64_t image_width = 28;
    int64_t image_channels = 1;
    int64_t d_model = 256;
    int64_t n_heads = 8;
    int64_t n_layers = 12;
    AttentionKind attention = AttentionKind::Krause;
    int64_t window = 128;  // W: keys in each query's causal window (Krause only)
    int64_t top_k = 96;    // K: nearest keys kept inside the window (Krause only)
    double init_sigma = 2.5;
    double dropout = 0.1;        // on each block's attention and MLP output, before the residual add
    double embed_dropout = 0.0;  // on the token + position embedding sum
    double mlp_dropout = 0.0;    // a second dropout on the MLP output, applied before `dropout`
    double embed_init_std = 0.02;  // std of the normal initialisation of both embeddings

    // T: sub-pixels per image, the sequence length of the likelihood.
    int64_t seq_len() const { return image_height * image_width * image_channels; }
    int64_t head_dim() const { return d_model / n_heads; }

    // Throws std::invalid_argument naming the first bad field.
    void validate() const;

    std::string to_json() const;
    // Parses and validates; throws std::invalid_argument on a bad or incomplete document.
    static ModelConfig from_json(const std::string& text);

    bool operator==(const ModelConfig& other) const;
    bool operator!=(const ModelConfig& other) const { return !(*this == other); }
};

// Presets: "mnist" and "cifar10" are the paper's shapes; "mnist-small", "mnist-tiny" and
// "cifar10-small" are for CPUs and tests. Throws std::invalid_argument for an unknown name.
ModelConfig preset(const std::string& name, AttentionKind attention = AttentionKind::Krause);
std::vector<std::string> preset_names();

}  // namespace krause
