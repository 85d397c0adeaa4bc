// krause init | sample | complete | inspect: making, sampling from, and looking into a model.
#include "app/commands.h"
#include "app/inputs.h"
#include "app/option_flags.h"
#include "app/progress.h"
#include "app/run_job.h"
#include "model/checkpoint.h"
#include "data/dataset.h"
#include "training/engine.h"
#include "training/options.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/utils.h>

#include <algorithm>
#include <cstdio>
#include <memory>

namespace krause::cli {
namespace {

struct InitOptions {
    OptionFlags flags;
    TrainConfig defaults;
    std::string out;
};

TrainConfig init_defaults() {
    TrainConfig c;
    c.preset = "mnist";
    return c;
}

void run_init(const InitOptions& o) {
    check_output_file(o.out, "--out");
    TrainConfig options = o.defaults;
    o.flags.apply(options);
    ModelConfig config;
    try {
        options.validate();
        config = model_config(options);
    } catch (const std::invalid_argument& e) {
        throw UsageError(e.what(), "see `krause init --help`");
    }
    torch::manual_seed(options.seed);
    PixelTransformer model(config);
    save_checkpoint(o.out, model, {{"step", "0"}});
    const std::string knobs = config.attention == AttentionKind::Krause
                                  ? fmt::format(", window {}, top-K {}", config.window, config.top_k)
                                  : "";
    fmt::print("wrote {}: preset {}, {} attention, d_model {}, {} heads, {} layers{}, {} parameters\n",
               o.out, options.preset, options.attention, config.d_model, config.n_heads,
               config.n_layers, knobs, model->parameter_count());
}

Images sample_images(const std::shared_ptr<ModelHandle>& model, const SampleRequest& request,
                     const std::string& label) {
    auto job = start_sampling(model, request);
    ProgressPrinter progress(label);
    const auto last = run_job(*job, [&](const SampleSnapshot& s) {
        if (s.progress.total > 0) {
            progress.update(s.progress.done, s.progress.total, s.progress.rate, "sub-pixels");
        }
    });
    progress.finish();
    if (last->images.filled < last->images.seq_len()) {
        throw std::runtime_error(fmt::format("interrupted after {} of {} sub-pixels; nothing written",
                                             last->images.filled, last->images.seq_len()));
    }
    return last->images;
}

struct ExportOptions {
    std::string checkpoint, out;
    bool bf16 = false;
};

// A model-only copy of a checkpoint (no optimiser state), optionally with bf16 storage.
void run_export(const ExportOptions& o) {
    check_output_file(o.out, "--out");
    if (o.checkpoint == o.out) throw UsageError("--out must differ from --checkpoint", "");
    auto loaded = load_checkpoint(o.checkpoint);
    Metadata keep;
    for (const char* key : {"step", "dataset", "train_config"}) {
        const auto it = loaded.metadata.find(key);
        if (it != loaded.metadata.end()) keep[key] = it->second;
    }
    save_checkpoint(o.out, loaded.model, keep, {}, o.bf16);
    fmt::print("wrote {}: {} parameters{}\n", o.out, loaded.model->parameter_count(),
               o.bf16 ? " stored as bf16" : "");
}

struct SampleOptionsCli {
    std::string checkpoint, model, out = "samples.png", device = "auto", precision = "auto";
    int64_t count = 16, columns = 0;
    double temperature = 1.0;
    uint64_t seed = 0;
};

void run_sample(const SampleOptionsCli& o) {
    if (o.count < 1 || o.count > 4096) throw UsageError("-n must be in 1..4096", "");
    if (!(o.temperature > 0)) throw UsageError("--temperature must be > 0", "");
    check_output_file(o.out, "--out");
    auto model = open_checkpoint(o.checkpoint, o.model);
    SampleRequest request;
    request.count = o.count;
    request.temperature = o.temperature;
    request.seed = o.seed;
    request.publish_every = 16;
    request.device = o.device;
    request.precision = o.precision;
    const auto images = sample_images(model, request, "sampling");
    write_png_grid(o.out, images, o.columns);
    fmt::print("wrote {}: {} samples of {}x{}x{}\n", o.out, images.count, images.height,
               images.width, images.channels);
}

struct CompleteOptions {
    std::string checkpoint, model, data = "mnist", out = "completions.png", device = "auto",
                precision = "auto";
    int64_t index = 0, rows = 14, count = 8;
    double temperature = 1.0;
    uint64_t seed = 0;
    bool data_given = false;
};

void run_complete(const CompleteOptions& o) {
    check_output_file(o.out, "--out");
    auto model = open_checkpoint(o.checkpoint, o.model);
    const auto info = summarize(*model);
    if (o.rows < 0 || o.rows > info.image_height) {
        throw UsageError(fmt::format("--rows must be in 0..{}", info.image_height), "");
    }
    if (o.count < 1 || o.count > 256) throw UsageError("-n must be in 1..256", "");
    const auto data = o.data_given ? o.data : model_data(o.model, o.data);
    const auto image = load_image_tokens(fmt::format("{}:{}", data, o.index), info.image_height,
                                         info.image_width, info.image_channels);
    const int64_t prefix_len = o.rows * info.image_width * info.image_channels;
    SampleRequest request;
    request.count = o.count;
    request.temperature = o.temperature;
    request.seed = o.seed;
    request.prefix.assign(image.begin(), image.begin() + prefix_len);
    request.prefix_len = prefix_len;
    request.publish_every = 16;
    request.device = o.device;
    request.precision = o.precision;
    const auto completions = sample_images(model, request, "completing");

    // One row: the original, the prompt (unknown part tinted), then the completions.
    Images grid = completions;
    const int64_t T = grid.seq_len();
    grid.count = o.count + 2;
    grid.tokens.clear();
    grid.tokens.insert(grid.tokens.end(), image.begin(), image.end());
    grid.tokens.insert(grid.tokens.end(), image.begin(), image.end());
    grid.tokens.insert(grid.tokens.end(), completions.tokens.begin(), completions.tokens.end());
    grid.filled_each.assign(grid.count, T);
    grid.filled_each[1] = prefix_len;
    write_png_grid(o.out, grid, grid.count);
    fmt::print("wrote {}: original, prompt of {} rows, {} completions\n", o.out, o.rows, o.count);
}

struct InspectOptions {
    std::string checkpoint, model, image = "mnist:0", pixel;
    int64_t top = 5;
    bool json = false;
};

nlohmann::json measures_json(const LayerMeasures& m) {
    return {{"sink_mass", m.sink_mass}, {"oldest_key", m.oldest_key}, {"max_weight", m.max_weight},
            {"entropy", m.entropy}, {"keys_for_90", m.keys_for_90}};
}

void run_inspect(const InspectOptions& o) {
    auto model = open_checkpoint(o.checkpoint, o.model);
    const auto info = summarize(*model);
    const int64_t H = info.image_height, W = info.image_width, C = info.image_channels;
    const auto px = parse_pixel(o.pixel, H, W, C);
    InspectRequest request;
    request.image = load_image_tokens(o.image, H, W, C);
    const int64_t sub = (px.row * W + px.col) * C + px.channel;
    request.sub_pixels = {sub};
    auto job = start_inspect(model, request);
    const auto snap = run_job(*job, [](const InspectSnapshot&) {});
    const auto& r = snap->result;
    const auto& q = r.queries.at(0);

    auto key_json = [&](int64_t j, float w) {
        return nlohmann::json{{"index", j}, {"row", j / C / W}, {"col", j / C % W},
                              {"channel", j % C}, {"weight", w}};
    };
    nlohmann::json out = {{"checkpoint", info.path},  {"attention", info.attention},
                          {"image", o.image},         {"pixel", {px.row, px.col, px.channel}},
                          {"sub_pixel", sub},          {"query_position", q.position},
                          {"window", r.window},        {"layers", nlohmann::json::array()}};
    for (int64_t l = 0; l < r.n_layers; ++l) {
        nlohmann::json layer = {{"layer", l},
                                {"measures", measures_json(r.at_queries[l])},
                                {"image_measures", measures_json(r.over_image[l])},
                                {"heads", nlohmann::json::array()}};
        for (int64_t h = 0; h < r.n_heads; ++h) {
            const auto& w = q.weights[l][h];
            std::vector<int64_t> order(w.size());
            for (size_t j = 0; j < w.size(); ++j) order[j] = static_cast<int64_t>(j);
            const auto top = std::min<int64_t>(o.top, static_cast<int64_t>(order.size()));
            std::partial_sort(order.begin(), order.begin() + top, order.end(),
                              [&](int64_t a, int64_t b) { return w[a] > w[b]; });
            nlohmann::json keys = nlohmann::json::array();
            for (int64_t i = 0; i < top; ++i) keys.push_back(key_json(order[i], w[order[i]]));
            layer["heads"].push_back({{"head", h},
                                      {"attended", q.selected[l][h].size()},
                                      {"sink_weight", w[0]},
                                      {"top_keys", keys}});
        }
        out["layers"].push_back(layer);
    }
    if (o.json) {
        fmt::print("{}\n", out.dump());
        return;
    }
    fmt::print("{} ({} attention): sub-pixel {} = row {}, col {}, channel {}; window {}\n", info.path,
               info.attention, sub, px.row, px.col, px.channel, r.window);
    fmt::print("{:>5} {:>8} {:>8} {:>8} {:>8} {:>7}   (this pixel; image mean in brackets)\n",
               "layer", "sink", "oldest", "max w", "entropy", "keys90");
    for (int64_t l = 0; l < r.n_layers; ++l) {
        const auto& a = r.at_queries[l];
        const auto& b = r.over_image[l];
        fmt::print("{:>5} {:>8.4f} {:>8.4f} {:>8.4f} {:>8.3f} {:>7.1f}   [{:.4f} {:.4f} {:.4f} "
                   "{:.3f} {:.1f}]\n",
                   l, a.sink_mass, a.oldest_key, a.max_weight, a.entropy, a.keys_for_90,
                   b.sink_mass, b.oldest_key, b.max_weight, b.entropy, b.keys_for_90);
    }
    for (const auto& layer : out["layers"]) {
        for (const auto& head : layer["heads"]) {
            std::string keys;
            for (const auto& k : head["top_keys"]) {
                keys += fmt::format(" ({},{},{})={:.3f}", k["row"].get<int64_t>(),
                                    k["col"].get<int64_t>(), k["channel"].get<int64_t>(),
                                    k["weight"].get<double>());
            }
            fmt::print("L{:<2} H{:<2} keys {:>4}:{}\n", layer["layer"].get<int64_t>(),
                       head["head"].get<int64_t>(), head["attended"].get<int64_t>(), keys);
        }
    }
}

}  // namespace

void add_model_commands(CLI::App& app) {
    auto init = std::make_shared<InitOptions>();
    init->defaults = init_defaults();
    auto* c = app.add_subcommand("init", "Write a freshly initialised model to a checkpoint");
    init->flags.add_to(*c, init->defaults, /*model_only=*/true);
    c->add_option("--out", init->out, "checkpoint file to write")->required();
    c->callback([init] { run_init(*init); });

    auto exp = std::make_shared<ExportOptions>();
    c = app.add_subcommand("export", "Write a model-only copy of a checkpoint");
    c->add_option("--checkpoint", exp->checkpoint, "checkpoint to read")->required();
    c->add_option("--out", exp->out, "model-only checkpoint to write")->required();
    c->add_flag("--bf16", exp->bf16, "store the weights as bf16 (half the size)");
    c->callback([exp] { run_export(*exp); });

    auto smp = std::make_shared<SampleOptionsCli>();
    c = app.add_subcommand("sample", "Sample images and save them as a PNG grid");
    c->add_option("--checkpoint", smp->checkpoint, "model checkpoint (default: the bundled model)")
        ->check(non_empty());
    add_model_option(c, smp->model);
    c->add_option("-n,--count", smp->count, "number of images")->capture_default_str();
    c->add_option("--temperature", smp->temperature, "softmax temperature")->capture_default_str();
    c->add_option("--seed", smp->seed, "sampling seed")->capture_default_str();
    c->add_option("--device", smp->device,
                  "where to sample (auto: a GPU when there is one): " + join_choices(device_choices()))
        ->check(CLI::IsMember(device_choices()))
        ->capture_default_str();
    c->add_option("--precision", smp->precision,
                  "auto (bf16 weights and caches on a GPU, fp32 on the CPU) | fp32 | bf16 | "
                  "fp8 (bf16 with the Krause ring buffers in fp8: faster on a GPU, less exact)")
        ->check(CLI::IsMember({"auto", "fp32", "bf16", "fp8"}))
        ->capture_default_str();
    c->add_option("--columns", smp->columns, "images per grid row (0: square)")->capture_default_str();
    c->add_option("--out", smp->out, "PNG file to write")->capture_default_str();
    c->callback([smp] { run_sample(*smp); });

    auto cmp = std::make_shared<CompleteOptions>();
    c = app.add_subcommand("complete", "Complete the top rows of a test image");
    c->add_option("--checkpoint", cmp->checkpoint, "model checkpoint (default: the bundled model)")
        ->check(non_empty());
    add_model_option(c, cmp->model);
    c->add_option("--data", cmp->data, "KIND[:DIR] of the test image (--model: its data set)")
        ->capture_default_str();
    c->add_option("--index", cmp->index, "test image index")->capture_default_str();
    c->add_option("--rows", cmp->rows, "top rows kept as the prompt")->capture_default_str();
    c->add_option("-n,--count", cmp->count, "number of completions")->capture_default_str();
    c->add_option("--temperature", cmp->temperature, "softmax temperature")->capture_default_str();
    c->add_option("--seed", cmp->seed, "sampling seed")->capture_default_str();
    c->add_option("--device", cmp->device,
                  "where to sample (auto: a GPU when there is one): " + join_choices(device_choices()))
        ->check(CLI::IsMember(device_choices()))
        ->capture_default_str();
    c->add_option("--precision", cmp->precision,
                  "auto (bf16 weights and caches on a GPU, fp32 on the CPU) | fp32 | bf16 | "
                  "fp8 (bf16 with the Krause ring buffers in fp8: faster on a GPU, less exact)")
        ->check(CLI::IsMember({"auto", "fp32", "bf16", "fp8"}))
        ->capture_default_str();
    c->add_option("--out", cmp->out, "PNG file to write")->capture_default_str();
    c->callback([cmp, c] {
        cmp->data_given = c->count("--data") > 0;
        run_complete(*cmp);
    });

    auto ins = std::make_shared<InspectOptions>();
    c = app.add_subcommand("inspect", "Show what one pixel attends to, per layer and head");
    c->add_option("--checkpoint", ins->checkpoint, "model checkpoint (default: the bundled model)")
        ->check(non_empty());
    add_model_option(c, ins->model);
    c->add_option("--image", ins->image, "FILE.png or KIND[:DIR]:INDEX (a test image)")
        ->capture_default_str();
    c->add_option("--pixel", ins->pixel, "ROW,COL or ROW,COL,CHANNEL")->required();
    c->add_option("--top", ins->top, "keys listed per head")->capture_default_str();
    c->add_flag("--json", ins->json, "print one JSON object");
    c->callback([ins] { run_inspect(*ins); });
}

}  // namespace krause::cli
