// krause train | eval: training runs and test-set likelihoods.
#include "app/commands.h"
#include "app/inputs.h"
#include "app/option_flags.h"
#include "app/progress.h"
#include "app/run_job.h"
#include "model/safetensors.h"
#include "data/dataset.h"
#include "training/distributed.h"
#include "training/engine.h"
#include "training/options.h"
#include "training/trainer.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <memory>

namespace krause::cli {
namespace {

// The run's options as given; on --resume the stored ones fill in the rest (training/options.h).
TrainConfig train_config(const OptionFlags& flags) {
    TrainConfig config;
    const auto given = flags.apply(config);
    try {
        if (!config.resume.empty()) config = resume_config(config, given);
        config.validate();
    } catch (const std::invalid_argument& e) {
        throw UsageError(e.what(), "see `krause train --help`");
    }
    return config;
}

void run_train(const OptionFlags& flags) {
    const TrainConfig config = train_config(flags);
    // Under torchrun only the first process reports; the others train quietly.
    const bool root = distributed_env().rank == 0;
    auto job = start_training(config);
    ProgressPrinter progress("training");
    size_t evals_seen = 0;
    std::string last_status;
    bool schedule_shown = false, data_shown = false;
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
        if (!s.data.empty() && !data_shown) progress.message(s.data);
        data_shown = !s.data.empty();
        if (!s.schedule.empty() && !schedule_shown) progress.message(s.schedule);
        schedule_shown = !s.schedule.empty();
        if (s.progress.total > 0 && s.step > 0) {
            // The loss and throughput exist from the first logged step on.
            const std::string detail =
                s.loss_curve.empty()
                    ? fmt::format("loss -  (logged every {} steps)", config.log_every)
                    : fmt::format("loss {:.4f} bits/dim  {:.0f} tok/s", s.loss_bpd,
                                  s.tokens_per_s);
            progress.update(s.progress.done, s.progress.total, s.progress.rate, "steps", detail);
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

}  // namespace

void add_train_commands(CLI::App& app) {
    auto flags = std::make_shared<OptionFlags>();
    auto* t = app.add_subcommand(
        "train", "Train a model (fresh, or --resume a run); under torchrun, on every GPU of it");
    flags->add_to(*t, TrainConfig(), /*model_only=*/false);
    t->callback([flags] { run_train(*flags); });

    auto ev = std::make_shared<EvalOptions>();
    auto* e = app.add_subcommand("eval", "Bits per dimension of a model on a data set");
    e->add_option("--checkpoint", ev->checkpoint, "model checkpoint (default: the bundled model)")
        ->check(non_empty());
    add_model_option(e, ev->model);
    e->add_option("--data", ev->data, "KIND[:DIR] (--model: its data set)")->capture_default_str();
    e->add_option("--split", ev->split, "test | train")->capture_default_str();
    e->add_option("--limit", ev->limit, "first N images (0: all)")->capture_default_str();
    e->add_option("--batch", ev->batch, "images per forward pass")->capture_default_str();
    e->add_option("--device", ev->device, "where to evaluate (auto: a GPU when there is one): " +
                                              join_choices(device_choices()))
        ->check(CLI::IsMember(device_choices()))
        ->capture_default_str();
    e->add_flag("--json", ev->json, "print one JSON object");
    e->callback([ev, e] {
        ev->data_given = e->count("--data") > 0;
        run_eval(*ev);
    });
}

}  // namespace krause::cli
