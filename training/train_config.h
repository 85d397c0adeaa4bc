// TrainConfig: everything a training run needs, as plain values (shared by the CLI and the GUI).
// Each field is declared as an option in training/options.h, which the front ends are made from.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace krause {

struct TrainConfig {
    std::string preset = "mnist-small";  // a model preset name (model/config.h)
    std::string attention = "krause";    // krause | softmax | linear
    // The model's shape and Krause knobs; unset: the preset's value.
    std::optional<int64_t> window, top_k, d_model, n_heads, n_layers;
    std::optional<double> init_sigma;
    std::string data = "mnist";          // KIND[:DIR], see data/dataset.h
    std::string out_dir = "runs/mnist";  // checkpoints, metrics.jsonl, sample grids
    std::string resume;                  // a checkpoint to continue from, or empty

    int64_t batch_size = 16;
    int64_t steps = 2000;   // total optimiser steps; epochs > 0 overrides it
    double epochs = 0.0;
    double minutes = 0.0;   // > 0: the steps that fit in this wall time (overrides both above)
    double lr = 1e-3;
    double weight_decay = 0.01;
    double warmup = 0.05;   // fraction of the steps spent in linear warm-up
    double min_lr = 1e-9;   // the cosine schedule ends here
    double grad_clip = 1.0; // max global gradient norm; 0 disables clipping
    double dropout = 0.1;   // overrides the preset's dropout
    double embed_dropout = 0.0;   // dropout on the embedding sum (a new model's config)
    double mlp_dropout = 0.0;     // a second dropout on each MLP output (a new model's config)
    double embed_init_std = 0.02; // std of a new model's embedding initialisation

    int64_t train_limit = 0;       // use at most this many training images (0 = all)
    int64_t eval_every = 500;      // steps between evaluations (0 = only at the end)
    int64_t eval_limit = 500;      // test images per evaluation (0 = the whole test set)
    int64_t checkpoint_every = 500;
    int64_t log_every = 10;
    int64_t preview_count = 16;    // images sampled for the grid at each evaluation (0 = none)

    uint64_t seed = 3407;
    std::string device = "auto";   // auto | cpu | cuda
    std::string precision = "bf16"; // bf16: autocast on CUDA (the CPU trains in fp32) | fp32
    int threads = 0;               // CPU threads for LibTorch (0 = its default)
    int64_t inject_nan_at = -1;    // test hook: make the loss at this step NaN

    // Throws std::invalid_argument naming the first bad option and its value; the model options
    // are checked as the model they make (model_config in training/options.h).
    void validate() const;
    std::string to_json() const;
    static TrainConfig from_json(const std::string& text);
};

}  // namespace krause
