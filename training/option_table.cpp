// The option table: every training option, declared once. Adding an option means one entry here
// (and its use); the CLI, the studio, validation, JSON and the resume merge follow.
#include "training/options.h"

#include <limits>

namespace krause {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
using C = TrainConfig;

OptionSpec number(const char* name, const char* flag, const char* label, const char* help,
                  OptionField field, OptionGroup group, OnResume on_resume, double lo, double hi,
                  bool lo_open = false, bool hi_open = false) {
    OptionSpec s{name, flag, label, help, field, group, on_resume};
    s.lo = lo;
    s.hi = hi;
    s.lo_open = lo_open;
    s.hi_open = hi_open;
    return s;
}

OptionSpec text(const char* name, const char* flag, const char* label, const char* help,
                std::string TrainConfig::*field, OptionGroup group, OnResume on_resume,
                TextKind kind = TextKind::Free,
                const std::vector<std::string>& (*choices)() = nullptr) {
    OptionSpec s{name, flag, label, help, field, group, on_resume};
    s.text = kind;
    s.choices = choices;
    return s;
}

OptionSpec shapes_model(OptionSpec s) {
    s.model = true;
    return s;
}

std::vector<OptionSpec> make_table() {
    using G = OptionGroup;
    using R = OnResume;
    return {
        shapes_model(text("preset", "preset", "preset",
                          "model shape; the model options below override its values", &C::preset,
                          G::Model, R::Stored, TextKind::Choice, preset_choices)),
        shapes_model(text("attention", "attention", "attention", "attention of every layer",
                          &C::attention, G::Model, R::Stored, TextKind::Choice, attention_choices)),
        shapes_model(number("d_model", "d-model", "width d_model",
                            "model width; a multiple of --n-heads", &C::d_model, G::Model,
                            R::Stored, 1, 16384)),
        shapes_model(number("n_heads", "n-heads", "heads", "attention heads", &C::n_heads, G::Model,
                            R::Stored, 1, 16384)),
        shapes_model(number("n_layers", "n-layers", "layers", "Transformer blocks", &C::n_layers,
                            G::Model, R::Stored, 1, 256)),
        shapes_model(number("window", "window", "window W",
                            "Krause: keys in each query's causal window", &C::window, G::Model,
                            R::Stored, 1, kInf)),
        shapes_model(number("top_k", "top-k", "top-K",
                            "Krause: nearest keys kept in the window; >= the window keeps it all",
                            &C::top_k, G::Model, R::Stored, 1, kInf)),
        shapes_model(number("init_sigma", "init-sigma", "init sigma",
                            "Krause: initial RBF bandwidth of every head", &C::init_sigma, G::Model,
                            R::Stored, 0, kInf, true)),
        shapes_model(number("dropout", "dropout", "dropout",
                            "dropout on each block's attention and MLP output", &C::dropout,
                            G::Model, R::Stored, 0, 1, false, true)),
        shapes_model(number("embed_dropout", "embed-dropout", "embedding dropout",
                            "dropout on the embedding sum", &C::embed_dropout, G::Model, R::Stored,
                            0, 1, false, true)),
        shapes_model(number("mlp_dropout", "mlp-dropout", "second MLP dropout",
                            "a second dropout on each MLP output, before --dropout",
                            &C::mlp_dropout, G::Model, R::Stored, 0, 1, false, true)),
        shapes_model(number("embed_init_std", "embed-init-std", "embedding init std",
                            "std of the normal initialisation of the token and position embeddings",
                            &C::embed_init_std, G::Model, R::Stored, 0, kInf, true)),
        shapes_model(number("seed", "seed", "seed",
                            "seed of initialisation, data order and dropout", &C::seed, G::Model,
                            R::Stored, 0, kInf)),

        text("data", "data", "data set", "KIND[:DIR]; KIND: mnist, fashion-mnist or cifar10",
             &C::data, G::Data, R::Given, TextKind::DataSpec, dataset_kind_choices),
        number("train_limit", "train-limit", "train images (0: all)",
               "use at most N training images (0: all)", &C::train_limit, G::Data, R::Stored, 0,
               kInf),

        number("batch_size", "batch", "batch",
               "images per step (over all processes under torchrun)", &C::batch_size, G::Optimiser,
               R::Stored, 1, 65536),
        number("lr", "lr", "learning rate", "peak learning rate", &C::lr, G::Optimiser, R::Stored,
               0, 10, true, true),
        number("weight_decay", "weight-decay", "weight decay", "AdamW weight decay",
               &C::weight_decay, G::Optimiser, R::Stored, 0, kInf),
        number("warmup", "warmup", "warm-up fraction", "fraction of steps in linear warm-up",
               &C::warmup, G::Optimiser, R::Stored, 0, 1, false, true),
        number("min_lr", "min-lr", "final lr", "final learning rate of the cosine (<= --lr)",
               &C::min_lr, G::Optimiser, R::Stored, 0, 10, false, true),
        number("grad_clip", "clip", "grad clip", "gradient norm clip (0: off)", &C::grad_clip,
               G::Optimiser, R::Stored, 0, kInf),

        number("steps", "steps", "steps", "optimiser steps", &C::steps, G::Schedule, R::Given, 1,
               kInf),
        number("epochs", "epochs", "epochs (0: use steps)",
               "passes over the training set (overrides --steps)", &C::epochs, G::Schedule,
               R::Given, 0, 1e6),
        number("minutes", "minutes", "minutes (0: steps/epochs)",
               "train for this wall time: the step count is set from the speed of a few timed "
               "steps (overrides --steps and --epochs; evaluations and checkpoints not counted)",
               &C::minutes, G::Schedule, R::Given, 0, 1e6),
        number("eval_every", "eval-every", "evaluate every",
               "steps between evaluations (0: at the end)", &C::eval_every, G::Schedule, R::Given,
               0, kInf),
        number("eval_limit", "eval-limit", "test images per eval",
               "test images per evaluation (0: all)", &C::eval_limit, G::Schedule, R::Given, 0,
               kInf),
        number("checkpoint_every", "checkpoint-every", "checkpoint every",
               "steps between checkpoints (0: at the end)", &C::checkpoint_every, G::Schedule,
               R::Given, 0, kInf),
        number("log_every", "log-every", "log every", "steps between metric lines", &C::log_every,
               G::Schedule, R::Given, 1, kInf),
        number("preview_count", "preview", "preview images",
               "images sampled at each evaluation (0: none)", &C::preview_count, G::Schedule,
               R::Given, 0, 256),

        text("out_dir", "out", "output folder",
             "run folder: checkpoint, metrics.jsonl, sample grids", &C::out_dir, G::Run, R::Given),
        text("resume", "resume", "resume from", "continue from this training checkpoint",
             &C::resume, G::Run, R::Fresh),
        text("device", "device", "device", "where to train", &C::device, G::Run, R::Given,
             TextKind::Choice, device_choices),
        text("precision", "precision", "precision (GPU)",
             "training precision on a GPU (the CPU always trains in fp32)", &C::precision, G::Run,
             R::Given, TextKind::Choice, precision_choices),
        number("threads", "threads", "threads (0: default)",
               "CPU threads of LibTorch and of its BLAS (0: their defaults)", &C::threads, G::Run,
               R::Given, 0, 1024),

        number("inject_nan_at", "inject-nan-at", "NaN loss at step (-1: off)",
               "testing: make the loss at this step NaN (-1: never)", &C::inject_nan_at, G::Testing,
               R::Fresh, -1, kInf),
    };
}

}  // namespace

const std::vector<OptionSpec>& train_options() {
    static const std::vector<OptionSpec> table = make_table();
    return table;
}

}  // namespace krause
