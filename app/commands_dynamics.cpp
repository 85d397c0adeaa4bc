// krause dynamics: per-layer token dynamics of the residual stream (collapse toward one state
// versus local clusters), beside the attention measures, for one model or two side by side.
#include "app/commands.h"
#include "app/inputs.h"
#include "app/progress.h"
#include "app/run_job.h"
#include "data/dataset.h"
#include "training/dynamics_job.h"
#include "training/options.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <memory>

namespace krause::cli {
namespace {

struct DynamicsOptionsCli {
    std::string checkpoint, compare, data = "mnist", device = "auto";
    int64_t images = 64, first = 0, image = -1, batch = 8;
    std::vector<double> eps = default_eps_fractions();
    bool json = false;
};

struct ModelRun {
    ModelSummary info;
    DynamicsMeasures measures;
    double seconds = 0;
};

ModelRun measure(const std::string& path, const DynamicsRequest& request, const Dataset& data,
                 bool quiet) {
    auto model = open_checkpoint(path);
    ModelRun run;
    run.info = summarize(*model);
    if (run.info.image_height != data.height || run.info.image_width != data.width ||
        run.info.image_channels != data.channels) {
        throw UsageError(
            fmt::format("{}: the model works on {}x{}x{} images, the data set has "
                        "{}x{}x{}",
                        run.info.path, run.info.image_height, run.info.image_width,
                        run.info.image_channels, data.height, data.width, data.channels),
            "pick the data set the model was trained on");
    }
    auto job = start_dynamics(model, request);
    ProgressPrinter progress(run.info.attention);
    const auto start = std::chrono::steady_clock::now();
    const auto last = run_job(*job, [&](const DynamicsSnapshot& s) {
        if (!quiet && s.progress.total > 0) {
            progress.update(s.progress.done, s.progress.total, s.progress.rate, "images");
        }
    });
    progress.finish();
    if (!last->ready) throw std::runtime_error("interrupted; nothing printed");
    run.measures = last->measures;
    run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return run;
}

nlohmann::json run_json(const ModelRun& r) {
    nlohmann::json layers = nlohmann::json::array();
    for (size_t l = 0; l < r.measures.states.size(); ++l) {
        const auto& s = r.measures.states[l];
        nlohmann::json row = {{"state", l == 0 ? "embedding" : fmt::format("block {}", l - 1)},
                              {"cosine", s.cosine},
                              {"consensus_distance", s.consensus},
                              {"effective_rank", s.effective_rank},
                              {"median_distance", s.median_distance},
                              {"clusters", s.clusters},
                              {"attention", nullptr}};
        if (l > 0) {
            const auto& a = r.measures.attention[l - 1];
            row["attention"] = {{"sink_mass", a.sink_mass},
                                {"oldest_key", a.oldest_key},
                                {"max_weight", a.max_weight},
                                {"entropy", a.entropy},
                                {"keys_for_90", a.keys_for_90}};
        }
        layers.push_back(row);
    }
    return {{"checkpoint", r.info.path},
            {"attention", r.info.attention},
            {"images", r.measures.images},
            {"seconds", r.seconds},
            {"layers", layers}};
}

std::string row_label(size_t l) {
    return l == 0 ? "embed" : fmt::format("blk {}", l - 1);
}

// One model's columns of a layer row, blank where the model has no such layer.
std::string columns(const ModelRun& r, size_t l) {
    const auto& states = r.measures.states;
    const size_t fractions = r.measures.eps_fractions.size();
    if (l >= states.size()) return std::string(48 + 7 * fractions, ' ');
    const auto& s = states[l];
    std::string out =
        fmt::format("{:>7.4f} {:>7.4f} {:>7.2f}", s.cosine, s.consensus, s.effective_rank);
    for (double c : s.clusters) out += fmt::format(" {:>6.1f}", c);
    if (l == 0) return out + fmt::format(" {:>7} {:>7} {:>7}", "-", "-", "-");
    const auto& a = r.measures.attention[l - 1];
    return out +
           fmt::format(" {:>7.4f} {:>7.4f} {:>7.1f}", a.sink_mass, a.oldest_key, a.keys_for_90);
}

std::string header(const std::vector<double>& fractions) {
    std::string out = fmt::format("{:>7} {:>7} {:>7}", "cosine", "dist", "rank");
    for (double f : fractions) out += fmt::format(" {:>6}", fmt::format("c{:g}", f));
    return out + fmt::format(" {:>7} {:>7} {:>7}", "sink", "oldest", "keys90");
}

void print_text(const std::vector<ModelRun>& runs, const DynamicsOptionsCli& o) {
    for (size_t m = 0; m < runs.size(); ++m) {
        const auto& r = runs[m];
        fmt::print("{} {}: {} attention, {} layers, d {}; {} image{} in {:.1f} s\n",
                   runs.size() > 1 ? (m == 0 ? "[A]" : "[B]") : "   ", r.info.path,
                   r.info.attention, r.info.n_layers, r.info.d_model, r.measures.images,
                   r.measures.images == 1 ? "" : "s", r.seconds);
    }
    fmt::print(
        "cosine: mean pairwise cosine of the token states; dist: ||X - mean||/||X||; rank: "
        "effective rank of the centred states;\nc<f>: clusters at eps = f x the layer's "
        "median pairwise distance; sink, oldest, keys90: attention of that block\n");
    std::string head = fmt::format("{:<6} {}", "state", header(o.eps));
    if (runs.size() > 1) head += " | " + header(o.eps);
    fmt::print("{}\n", head);
    size_t rows = 0;
    for (const auto& r : runs) rows = std::max(rows, r.measures.states.size());
    for (size_t l = 0; l < rows; ++l) {
        std::string line = fmt::format("{:<6} {}", row_label(l), columns(runs[0], l));
        if (runs.size() > 1) line += " | " + columns(runs[1], l);
        fmt::print("{}\n", line);
    }
}

void run_dynamics(const DynamicsOptionsCli& o) {
    if (o.images < 1) throw UsageError("--images must be >= 1", "");
    if (o.first < 0) throw UsageError("--first must be >= 0", "");
    if (o.batch < 1) throw UsageError("--batch must be >= 1", "");
    if (o.eps.empty()) throw UsageError("--eps needs at least one fraction", "e.g. --eps 0.25,0.5");
    for (double f : o.eps) {
        if (!(f > 0)) throw UsageError(fmt::format("--eps fraction {} must be > 0", f), "");
    }
    const bool one = o.image >= 0;
    const int64_t first = one ? o.image : o.first;
    const auto data = load_dataset(parse_dataset_spec(o.data), Split::Test,
                                   one ? o.image + 1 : o.first + o.images);
    if (first >= data.size()) {
        throw UsageError(fmt::format("{} {} is beyond the {} test images",
                                     one ? "--image" : "--first", first, data.size()),
                         "");
    }
    DynamicsRequest request;
    request.count = one ? 1 : data.size() - first;
    request.images.assign(data.image(first), data.image(first) + request.count * data.seq_len());
    request.particles_of = -1;
    request.device = o.device;
    request.eps_fractions = o.eps;
    request.batch_size = o.batch;

    std::vector<ModelRun> runs{measure(o.checkpoint, request, data, o.json)};
    if (!o.compare.empty()) runs.push_back(measure(o.compare, request, data, o.json));
    if (o.json) {
        nlohmann::json j = {{"data", o.data},
                            {"images", request.count},
                            {"first_image", first},
                            {"eps_fractions", o.eps},
                            {"models", nlohmann::json::array()}};
        for (const auto& r : runs) j["models"].push_back(run_json(r));
        fmt::print("{}\n", j.dump());
        return;
    }
    print_text(runs, o);
}

}  // namespace

void add_dynamics_command(CLI::App& app) {
    auto o = std::make_shared<DynamicsOptionsCli>();
    auto* c = app.add_subcommand(
        "dynamics", "Token dynamics across depth: collapse toward one state versus clusters");
    c->add_option("--checkpoint", o->checkpoint, "model checkpoint (default: the bundled model)")
        ->check(non_empty());
    c->add_option("--compare", o->compare, "a second checkpoint, printed beside the first")
        ->check(non_empty());
    c->add_option("--data", o->data, "KIND[:DIR] of the test images")->capture_default_str();
    c->add_option("--images", o->images, "average over the first N test images")
        ->capture_default_str();
    c->add_option("--first", o->first, "the first of the --images test images")
        ->capture_default_str();
    c->add_option("--image", o->image, "measure only test image I (instead of --images)");
    c->add_option("--eps", o->eps,
                  "cluster thresholds as fractions of each layer's median pairwise distance")
        ->delimiter(',')
        ->capture_default_str();
    c->add_option("--batch", o->batch, "images per forward pass")->capture_default_str();
    c->add_option("--device", o->device, "auto (a GPU when there is one) | cpu | cuda")
        ->check(CLI::IsMember(device_choices()))
        ->capture_default_str();
    c->add_flag("--json", o->json, "print one JSON object");
    c->callback([o] { run_dynamics(*o); });
}

}  // namespace krause::cli
