// krause train | eval | data fetch: training runs, test-set likelihoods, and data downloads.
#include "app/commands.h"
#include "app/inputs.h"
#include "app/progress.h"
#include "app/run_job.h"
#include "model/safetensors.h"
#include "training/dataset.h"
#include "training/distributed.h"
#include "training/engine.h"
#include "training/fetch.h"
#include "training/trainer.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <memory>

namespace krause::cli {
namespace {

struct TrainOptions {
    TrainConfig config;
    std::string resume;
};

// On --resume, options not given on the command line come from the checkpoint's own run.
TrainConfig merge_resumed(const TrainConfig& given, const std::string& path, CLI::App& cmd) {
    const auto file = read_safetensors(path);
    const auto it = file.metadata.find(kMetaTrainConfig);
    if (it == file.metadata.end()) {
        throw UsageError(path + ": not a training checkpoint (no training config stored)",
                         "resume from the checkpoint.safetensors of a `krause train` run");
    }
    TrainConfig merged = TrainConfig::from_json(it->second);
    auto given_opt = [&](const char* name) { return cmd.count(name) > 0; };
    if (given_opt("--data")) merged.data = given.data;
    if (given_opt("--out")) merged.out_dir = given.out_dir;
    if (given_opt("--steps")) merged.steps = given.steps, merged.epochs = 0;
    if (given_opt("--epochs")) merged.epochs = given.epochs;
    if (given_opt("--eval-every")) merged.eval_every = given.eval_every;
    if (given_opt("--eval-limit")) merged.eval_limit = given.eval_limit;
    if (given_opt("--checkpoint-every")) merged.checkpoint_every = given.checkpoint_every;
    if (given_opt("--log-every")) merged.log_every = given.log_every;
    if (given_opt("--preview")) merged.preview_count = given.preview_count;
    if (given_opt("--device")) merged.device = given.device;
    if (given_opt("--precision")) merged.precision = given.precision;
    if (given_opt("--threads")) merged.threads = given.threads;
    if (given_opt("--inject-nan-at")) merged.inject_nan_at = given.inject_nan_at;
    merged.resume = path;
    return merged;
}

void run_train(TrainOptions& o, CLI::App& cmd) {
    TrainConfig config = o.config;
    if (!o.resume.empty()) {
        if (!std::filesystem::exists(o.resume)) {
            throw UsageError(o.resume + ": no such checkpoint to resume from", "");
        }
        config = merge_resumed(o.config, o.resume, cmd);
    }
    try {
        config.validate();
    } catch (const std::invalid_argument& e) {
        throw UsageError(e.what(), "see `krause train --help`");
    }
    // Under torchrun only the first process reports; the others train quietly.
    const bool root = distributed_env().rank == 0;
    auto job = start_training(config);
    ProgressPrinter progress("training");
    size_t evals_seen = 0;
    std::string last_status;
    const auto last = run_job(*job, [&](const TrainSnapshot& s) {
        if (!root) return;
        while (evals_seen < s.test_curve.size()) {
            const auto& a = s.test_curve[evals_seen];
            const auto& b = s.test_curve_pred[evals_seen];
            std::string sink;
            if (evals_seen < s.sink_mass.size()) {
                for (double v : s.sink_mass[evals_seen]) sink += fmt::format(" {:.3f}", v);
            }
            progress.message(fmt::format("step {}: test {:.4f} bits/dim over T, {:.4f} over T-1; "
                                         "sink mass per layer:{}",
                                         a.step, a.value, b.value, sink));
            ++evals_seen;
        }
        // Phase changes worth a line of their own; the final status is printed below.
        if (s.status != last_status && s.status == "loading data") progress.message(s.status);
        last_status = s.status;
        if (s.progress.total > 0 && s.step > 0) {
            progress.update(s.progress.done, s.progress.total, s.progress.rate, "steps",
                            fmt::format("loss {:.4f} bits/dim  {:.0f} tok/s", s.loss_bpd,
                                        s.tokens_per_s));
        }
    });
    progress.finish();
    if (root) {
        fmt::print("{}\ncheckpoint: {}\nmetrics: {}\n", last->status, last->checkpoint,
                   metrics_path(config.out_dir));
    }
    if (interrupted()) std::exit(130);
}

struct EvalOptions {
    std::string checkpoint, model, data = "mnist", split = "test", device = "auto";
    int64_t limit = 0, batch = 32;
    bool json = false, data_given = false;
};

void run_eval(const EvalOptions& o) {
    auto model = open_checkpoint(o.checkpoint, o.model);
    const auto data = o.data_given ? o.data : model_data(o.model, o.data);
    EvalRequest request{data, o.split, o.limit, o.batch, o.device};
    if (o.limit < 0 || o.batch < 1) throw UsageError("--limit must be >= 0 and --batch >= 1", "");
    auto job = start_eval(model, request);
    ProgressPrinter progress("evaluating");
    const auto last = run_job(*job, [&](const EvalSnapshot& s) {
        if (!o.json && s.progress.total > 0) {
            progress.update(s.progress.done, s.progress.total, s.progress.rate, "images");
        }
    });
    progress.finish();
    const auto& r = last->result;
    if (o.json) {
        nlohmann::json j = {{"checkpoint", summarize(*model).path}, {"data", data},
                            {"split", o.split}, {"bpd_all", r.bpd_all},
                            {"bpd_predicted", r.bpd_predicted}, {"images", r.images},
                            {"seconds", r.seconds}};
        fmt::print("{}\n", j.dump());
    } else {
        fmt::print("{} images of {} ({} split) in {:.1f} s\n", r.images, data, o.split, r.seconds);
        fmt::print("bits/dim over all T sub-pixels:        {:.4f}\n", r.bpd_all);
        fmt::print("bits/dim over the T-1 predicted ones:  {:.4f}\n", r.bpd_predicted);
    }
}

struct FetchOptions {
    std::string kind, dir, base_url;
};

void run_fetch(const FetchOptions& o) {
    const auto kind = parse_dataset_kind(o.kind);
    std::string dir = o.dir;
    if (dir.empty()) {
        const char* root = std::getenv("KRAUSE_DATA_DIR");
        dir = (std::filesystem::path(root ? root : "data") / default_subdir(kind)).string();
    }
    fetch_dataset(kind, dir, [](const std::string& line) { fmt::print(stderr, "{}\n", line); },
                  o.base_url);
    fmt::print("{} is ready in {}\n", to_string(kind), dir);
}

}  // namespace

void add_train_commands(CLI::App& app) {
    auto tr = std::make_shared<TrainOptions>();
    auto& c = tr->config;
    auto* t = app.add_subcommand(
        "train", "Train a model (fresh, or --resume a run); under torchrun, on every GPU of it");
    t->add_option("--preset", c.preset, "mnist | cifar10 | mnist-small | mnist-tiny | cifar10-small")
        ->capture_default_str();
    t->add_option("--attention", c.attention, "krause | softmax | linear")->capture_default_str();
    t->add_option("--data", c.data, "KIND[:DIR]: mnist, fashion-mnist or cifar10")
        ->capture_default_str();
    t->add_option("--out", c.out_dir, "run folder: checkpoint, metrics.jsonl, sample grids")
        ->capture_default_str();
    t->add_option("--resume", tr->resume, "continue from this training checkpoint");
    t->add_option("--batch", c.batch_size, "images per step (over all processes under torchrun)")
        ->capture_default_str();
    t->add_option("--steps", c.steps, "optimiser steps")->capture_default_str();
    t->add_option("--epochs", c.epochs, "passes over the training set (overrides --steps)");
    t->add_option("--lr", c.lr, "peak learning rate")->capture_default_str();
    t->add_option("--weight-decay", c.weight_decay, "AdamW weight decay")->capture_default_str();
    t->add_option("--warmup", c.warmup, "fraction of steps in linear warm-up")->capture_default_str();
    t->add_option("--min-lr", c.min_lr, "final learning rate of the cosine")->capture_default_str();
    t->add_option("--clip", c.grad_clip, "gradient norm clip (0: off)")->capture_default_str();
    t->add_option("--dropout", c.dropout, "dropout on each block's attention and MLP output")
        ->capture_default_str();
    t->add_option("--embed-dropout", c.embed_dropout, "dropout on the embedding sum")
        ->capture_default_str();
    t->add_option("--mlp-dropout", c.mlp_dropout,
                  "a second dropout on each MLP output, before --dropout")
        ->capture_default_str();
    t->add_option("--embed-init-std", c.embed_init_std,
                  "std of the normal initialisation of the token and position embeddings")
        ->capture_default_str();
    t->add_option("--train-limit", c.train_limit, "use at most N training images (0: all)")
        ->capture_default_str();
    t->add_option("--eval-every", c.eval_every, "steps between evaluations (0: at the end)")
        ->capture_default_str();
    t->add_option("--eval-limit", c.eval_limit, "test images per evaluation (0: all)")
        ->capture_default_str();
    t->add_option("--checkpoint-every", c.checkpoint_every, "steps between checkpoints")
        ->capture_default_str();
    t->add_option("--log-every", c.log_every, "steps between metric lines")->capture_default_str();
    t->add_option("--preview", c.preview_count, "images sampled at each evaluation (0: none)")
        ->capture_default_str();
    t->add_option("--seed", c.seed, "seed of initialisation, data order and dropout")
        ->capture_default_str();
    t->add_option("--device", c.device, "auto | cpu | cuda")->capture_default_str();
    t->add_option("--precision", c.precision,
                  "bf16 (autocast on a GPU; the CPU always trains in fp32) | fp32")
        ->check(CLI::IsMember({"bf16", "fp32"}))
        ->capture_default_str();
    t->add_option("--threads", c.threads, "CPU threads (0: all)")->capture_default_str();
    t->add_option("--inject-nan-at", c.inject_nan_at, "testing: make the loss at this step NaN");
    t->callback([tr, t] { run_train(*tr, *t); });

    auto ev = std::make_shared<EvalOptions>();
    auto* e = app.add_subcommand("eval", "Bits per dimension of a model on a data set");
    e->add_option("--checkpoint", ev->checkpoint, "model checkpoint (default: the bundled model)")
        ->check(non_empty());
    add_model_option(e, ev->model);
    e->add_option("--data", ev->data, "KIND[:DIR] (--model: its data set)")->capture_default_str();
    e->add_option("--split", ev->split, "test | train")->capture_default_str();
    e->add_option("--limit", ev->limit, "first N images (0: all)")->capture_default_str();
    e->add_option("--batch", ev->batch, "images per forward pass")->capture_default_str();
    e->add_option("--device", ev->device, "auto (a GPU when there is one) | cpu | cuda")
        ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
        ->capture_default_str();
    e->add_flag("--json", ev->json, "print one JSON object");
    e->callback([ev, e] {
        ev->data_given = e->count("--data") > 0;
        run_eval(*ev);
    });

    auto fe = std::make_shared<FetchOptions>();
    auto* d = app.add_subcommand("data", "Data set tools");
    d->require_subcommand(1);
    auto* f = d->add_subcommand("fetch", "Download and verify a data set");
    f->add_option("kind", fe->kind, "mnist | fashion-mnist | cifar10")->required();
    f->add_option("--dir", fe->dir, "destination folder (default: $KRAUSE_DATA_DIR/<kind>)")
        ->check(non_empty());
    f->add_option("--base-url", fe->base_url, "fetch from this mirror instead (file:// works)");
    f->callback([fe] { run_fetch(*fe); });
}

}  // namespace krause::cli
