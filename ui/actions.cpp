// Starting jobs from the UI: requests are built from the panels' settings; jobs being replaced
// are retired (stopped, joined later) so the UI thread never waits on a worker.
#include "ui/actions.h"
#include "ui/data_folder.h"

#include "training/options.h"

#include "ui/texture.h"

#include "ui/panels.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace krause::ui {

namespace {

constexpr double kAssumedFps = 60.0;  // "sub-pixels per frame" are per 1/60 s
// Snapshots a second: the window draws at most 30 frames a second while jobs run
// (studio_app.cpp), and fewer snapshots leave more of the CPU to the sampler.
constexpr double kPublishHz = 30.0;
// Image averages start with every probe up to this many sub-pixels (MNIST); beyond (CIFAR-10) they
// take long on a CPU, and an inspect job cannot be stopped midway, so they wait for a click.
constexpr int64_t kAutoAveragesMax = 1024;
// CPU runs estimated to take longer than this ask for confirmation first.
constexpr double kLongRunSeconds = 3600;

bool need_model(const StudioState& state, std::string* error) {
    if (state.model.loaded()) return true;
    *error = "open a model first (Model panel)";
    return false;
}

bool same_shape(const ModelSummary& m, const Images& images) {
    return m.image_height == images.height && m.image_width == images.width &&
           m.image_channels == images.channels;
}

std::string shape_text(int64_t h, int64_t w, int64_t c) {
    return std::to_string(h) + "x" + std::to_string(w) + "x" + std::to_string(c);
}

// The images a source name refers to, or null when it shows none.
const Images* source_images(const StudioState& state, const std::string& source) {
    if (source == "sample") return state.sample.shown ? &state.sample.shown->images : nullptr;
    if (source == "complete") return state.complete.shown ? &state.complete.shown->images : nullptr;
    if (source == "preview") return state.train.shown ? &state.train.shown->preview : nullptr;
    if (source == "compare-a")
        return state.compare.shown_a ? &state.compare.shown_a->images : nullptr;
    if (source == "compare-b")
        return state.compare.shown_b ? &state.compare.shown_b->images : nullptr;
    if (source == "inspect")
        return state.inspect.has_target ? &state.inspect.target.pixels : nullptr;
    return nullptr;
}

// The engine checks a request before it starts the job; a complaint goes to the user.
template <class Start>
bool try_start(Start start, std::string* error) {
    try {
        start();
        return true;
    } catch (const std::exception& e) {
        *error = e.what();
        return false;
    }
}

// A run given its own folder (KIND:DIR) that holds the data set, while the studio's data folder
// has no such set: that folder becomes the studio's, so that Complete, Inspect and Dynamics find
// the images the model trains on. A data folder that already has the set is left as it is.
void adopt_training_folder(StudioState& state, const std::string& spec) {
    if (spec.find(':') == std::string::npos) return;  // read from the studio's folder already
    DatasetSpec data;
    try {
        data = parse_dataset_spec(spec);  // KIND:DIR: no search
    } catch (const std::exception&) {
        return;  // the run itself reports a bad spec
    }
    if (!data_dir_for(state, to_string(data.kind)).empty() ||
        !dataset_files_present(data.kind, data.dir)) {
        return;
    }
    std::string error;
    if (set_data_folder(state, data.dir, &error)) {
        state.folders.message = "data folder " + state.folders.root + " (from the training run)";
    }
}

}  // namespace

const BundledModel* bundled_in(const StudioState& state, const ModelSlot& slot) {
    if (!slot.loaded()) return nullptr;
    for (const BundledModel& m : state.bundled) {
        if (!m.path.empty() && m.path == slot.summary.path) return &m;
    }
    return nullptr;
}

std::vector<const BundledModel*> bundled_twins(const StudioState& state) {
    std::vector<const BundledModel*> twins;
    const BundledModel* open = bundled_in(state, state.model);
    if (open == nullptr) return twins;
    for (const BundledModel& m : state.bundled) {
        if (!m.path.empty() && m.data == open->data && m.preset == open->preset &&
            m.attention != open->attention) {
            twins.push_back(&m);
        }
    }
    return twins;
}

void open_model(StudioState& state, ModelSlot& slot, const std::string& path) {
    slot.path_field = path;
    slot.error.clear();
    state.retired.retire(std::move(slot.opening));
    slot.opening = std::make_unique<Job<OpenedModel>>([path](JobContext<OpenedModel>& context) {
        OpenedModel opened;
        opened.handle = krause::open_model(path);
        opened.summary = summarize(*opened.handle);
        // The run's curves, when the checkpoint still sits in its run folder; a damaged log
        // leaves the model usable.
        const std::string metrics = metrics_beside(path);
        if (!metrics.empty()) {
            try {
                opened.run = read_run_curves(metrics);
            } catch (const std::exception&) {
                opened.run = RunCurves();
            }
        }
        context.publish(std::move(opened));
    });
}

bool start_sample(StudioState& state, std::string* error) {
    if (!need_model(state, error)) return false;
    SampleState& s = state.sample;
    SampleRequest request;
    request.count = std::clamp(s.count, 1, 64);
    request.temperature = s.temperature;
    request.seed = static_cast<uint64_t>(s.seed);
    request.publish_every = 1;
    request.publish_interval_s = 1.0 / kPublishHz;
    request.max_tokens_per_s = s.fast ? 0 : std::max(1, s.tokens_per_frame) * kAssumedFps;
    state.retired.retire(std::move(s.job));
    s.message.clear();
    return try_start([&] { s.job = start_sampling(state.model.handle, request); }, error);
}

bool save_sample_png(StudioState& state, const std::string& path, std::string* error) {
    if (!state.sample.shown || state.sample.shown->images.count == 0) {
        *error = "nothing sampled yet";
        return false;
    }
    try {
        write_png_grid(path, state.sample.shown->images);
    } catch (const std::exception& e) {
        *error = e.what();
        return false;
    }
    state.sample.message = "saved " + path;
    return true;
}

std::string data_spec(const std::string& kind, const std::string& dir) {
    return dir.empty() ? kind : kind + ":" + dir;
}

void load_data(StudioState& state) {
    DataState& d = state.data;
    d.error.clear();
    state.retired.retire(std::move(d.loading));
    if (d.dir.empty()) d.dir = data_dir_for(state, d.kind);
    if (d.dir.empty()) {
        d.error = data_missing_message(state, d.kind);
        return;
    }
    const std::string spec = data_spec(d.kind, d.dir);
    const std::string kind = d.kind, dir = d.dir;
    d.loading =
        std::make_unique<Job<LoadedData>>([spec, kind, dir](JobContext<LoadedData>& context) {
            LoadedData loaded;
            loaded.data = std::make_shared<const Dataset>(
                load_dataset(parse_dataset_spec(spec), Split::Test));
            loaded.class_names = class_names(kind, dir);
            context.publish(std::move(loaded));
        });
}

bool start_complete(StudioState& state, std::string* error) {
    if (!need_model(state, error)) return false;
    const DataState& d = state.data;
    const ModelSummary& m = state.model.summary;
    CompleteState& c = state.complete;
    const int64_t H = m.image_height, W = m.image_width, C = m.image_channels;
    const uint8_t* source = nullptr;
    if (c.drawn) {
        c.canvas.reshape(H, W, C);
        source = c.canvas.image().tokens.data();
    } else {
        if (!d.data || d.data->size() == 0) {
            *error = "load a data set first (or draw a prompt)";
            return false;
        }
        const Dataset& data = *d.data;
        if (H != data.height || W != data.width || C != data.channels) {
            *error = "the model takes " + shape_text(H, W, C) + " images, the data set has " +
                     shape_text(data.height, data.width, data.channels);
            return false;
        }
        source = data.image(std::clamp(d.selected, 0, static_cast<int>(data.size()) - 1));
    }
    c.rows = std::clamp<int>(c.rows, 1, static_cast<int>(H) - 1);
    const int64_t T = H * W * C;
    const int64_t prefix_len = c.rows * W * C;

    SampleRequest request;
    request.count = std::clamp(c.count, 1, 16);
    request.temperature = c.temperature;
    request.seed = static_cast<uint64_t>(c.seed);
    request.prefix.assign(source, source + prefix_len);
    request.prefix_len = prefix_len;
    request.publish_every = std::max<int64_t>(1, W * C / 4);
    request.publish_interval_s = 1.0 / kPublishHz;

    Images prompt;
    prompt.count = 1;
    prompt.height = H;
    prompt.width = W;
    prompt.channels = C;
    prompt.tokens.assign(source, source + T);
    prompt.filled = prefix_len;
    c.prompt.set(prompt);
    prompt.filled = T;
    c.original.set(prompt);
    c.message.clear();
    state.retired.retire(std::move(c.job));
    return try_start([&] { c.job = start_sampling(state.model.handle, request); }, error);
}

bool inspect_pixel(StudioState& state, const std::string& source, int image, int row, int col,
                   int channel, std::string* error) {
    if (!need_model(state, error)) return false;
    Images one;
    if (source == "data") {
        if (!state.data.data || image < 0 || image >= state.data.data->size()) {
            *error = "no data set image " + std::to_string(image);
            return false;
        }
        const Dataset& data = *state.data.data;
        one.height = data.height;
        one.width = data.width;
        one.channels = data.channels;
        one.tokens.assign(data.image(image), data.image(image) + data.seq_len());
        one.filled = data.seq_len();
    } else {
        const Images* images = source_images(state, source);
        if (!images || image < 0 || image >= images->count) {
            *error = "no " + source + " image " + std::to_string(image);
            return false;
        }
        one.height = images->height;
        one.width = images->width;
        one.channels = images->channels;
        const int64_t t = images->seq_len();
        one.tokens.assign(images->tokens.begin() + image * t,
                          images->tokens.begin() + (image + 1) * t);
        one.filled = images->filled;
    }
    one.count = 1;
    if (row < 0 || col < 0 || row >= one.height || col >= one.width || channel < 0 ||
        channel >= one.channels) {
        *error = "pixel (" + std::to_string(row) + ", " + std::to_string(col) + ", channel " +
                 std::to_string(channel) + ") is outside the " +
                 shape_text(one.height, one.width, one.channels) + " image";
        return false;
    }
    const ModelSummary& m = state.model.summary;
    if (!same_shape(m, one)) {
        *error = "the model takes " + shape_text(m.image_height, m.image_width, m.image_channels) +
                 " images, this one is " + shape_text(one.height, one.width, one.channels);
        return false;
    }
    const int64_t sub_pixel =
        (static_cast<int64_t>(row) * one.width + col) * one.channels + channel;
    if (sub_pixel == 0) {
        *error = "the first sub-pixel comes from the prior and attends to nothing; pick another";
        return false;
    }
    if (sub_pixel >= one.filled) {
        *error = "that pixel is not generated yet";
        return false;
    }

    InspectState& in = state.inspect;
    // A click on the inspected image itself keeps naming the image it came from.
    const bool again = source == "inspect";
    in.target = ProbeTarget{again ? in.target.source : source,
                            again ? in.target.image : image,
                            row,
                            col,
                            channel,
                            one,
                            sub_pixel};
    in.has_target = true;
    in.channel = channel;
    in.source.set(one);
    in.maps.clear();
    in.message.clear();
    InspectRequest request;
    request.image = one.tokens;
    request.sub_pixels = {sub_pixel};
    request.image_measures = false;

    state.retired.retire(std::move(in.job));
    state.retired.retire(std::move(in.measures));
    in.over_image.clear();
    if (!try_start([&] { in.job = start_inspect(state.model.handle, request); }, error)) {
        return false;
    }
    in.next_probs.clear();
    probe_second_model(state);
    if (in.averages_always || one.seq_len() <= kAutoAveragesMax) start_image_averages(state, error);
    if (in.jump_on_click && state.tab != Tab::Compare) select_tab(state, Tab::Inspect);
    return true;
}

void probe_second_model(StudioState& state) {
    const InspectState& in = state.inspect;
    CompareState& cmp = state.compare;
    state.retired.retire(std::move(cmp.inspect));
    state.retired.retire(std::move(cmp.measures));
    cmp.maps.clear();
    cmp.over_image.clear();
    if (!in.has_target || !cmp.model.loaded() || !same_shape(cmp.model.summary, in.target.pixels)) {
        return;
    }
    cmp.message.clear();
    InspectRequest request;
    request.image = in.target.pixels.tokens;
    request.sub_pixels = {in.target.sub_pixel};
    request.image_measures = false;
    try_start([&] { cmp.inspect = start_inspect(cmp.model.handle, request); }, &cmp.message);
    // The image averages follow when the main model has them (or is computing them).
    if (in.measures && in.target.pixels.filled == in.target.pixels.seq_len()) {
        request.image_measures = true;
        try_start([&] { cmp.measures = start_inspect(cmp.model.handle, request); }, &cmp.message);
    }
}

Progress train_progress(const TrainState& t, std::string* label) {
    Progress p = t.shown ? t.shown->progress : Progress();
    const bool paused = t.job && !t.job->done() && t.job->paused();
    if (!t.job || t.job->done() || paused) p.eta_s = 0;
    *label = paused ? "paused" : job_state(t.job);
    return p;
}

bool move_inspected_pixel(StudioState& state, int d_row, int d_col, std::string* error) {
    const InspectState& in = state.inspect;
    if (!in.has_target) {
        *error = "inspect a pixel first";
        return false;
    }
    const Images& image = in.target.pixels;
    const int row = std::clamp<int>(in.target.row + d_row, 0, static_cast<int>(image.height) - 1);
    const int col = std::clamp<int>(in.target.col + d_col, 0, static_cast<int>(image.width) - 1);
    if (row == in.target.row && col == in.target.col) return true;
    return inspect_pixel(state, "inspect", 0, row, col, in.target.channel, error);
}

bool export_png(StudioState& state, const std::string& what, int scale, const std::string& path,
                std::string* error) {
    if (scale < 1 || scale > 64) {
        *error = "the PNG scale must be 1..64, got " + std::to_string(scale);
        return false;
    }
    if (path.empty()) {
        *error = "name the PNG file to write";
        return false;
    }
    int width = 0, height = 0;
    if (what == "samples" || what == "completions") {
        const auto& shown = what == "samples" ? state.sample.shown : state.complete.shown;
        if (!shown || shown->images.count == 0) {
            *error = "no " + what + " to save yet";
            return false;
        }
        const Images& images = shown->images;
        const int64_t columns = what == "completions"
                                    ? std::min<int64_t>(4, images.count)
                                    : static_cast<int64_t>(std::ceil(std::sqrt(images.count)));
        try {
            write_png_grid(path, images, columns, scale);
        } catch (const std::exception& e) {
            *error = e.what();
            return false;
        }
        const int64_t rows = (images.count + columns - 1) / columns;
        width = static_cast<int>((columns * (images.width + 1) - 1) * scale);
        height = static_cast<int>((rows * (images.height + 1) - 1) * scale);
    } else if (what == "inspect-grid" || what == "inspect-map") {
        const InspectState& in = state.inspect;
        if (!in.maps.ready()) {
            *error = "no attention maps to save yet (click a pixel first)";
            return false;
        }
        const auto rgba = what == "inspect-grid"
                              ? in.maps.grid_rgba(scale, scale, &width, &height)
                              : in.maps.map_rgba(in.layer, in.head, scale, &width, &height);
        if (!write_rgba_png(path, rgba.data(), width, height, error)) return false;
    } else {
        *error = "cannot export '" + what + "' (samples, completions, inspect-grid, inspect-map)";
        return false;
    }
    state.last_export.path = path;
    state.last_export.width = width;
    state.last_export.height = height;
    return true;
}

std::vector<std::string> class_names(const std::string& kind, const std::string& dir) {
    if (kind == "cifar10") {
        namespace fs = std::filesystem;
        for (const fs::path& file : {fs::path(dir) / "batches.meta.txt",
                                     fs::path(dir) / "cifar-10-batches-bin" / "batches.meta.txt"}) {
            std::ifstream in(file);
            std::vector<std::string> names;
            for (std::string line; std::getline(in, line);) {
                while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) {
                    line.pop_back();
                }
                if (!line.empty()) names.push_back(line);
            }
            if (names.size() == 10) return names;
        }
        return {"airplane", "automobile", "bird",  "cat",  "deer",
                "dog",      "frog",       "horse", "ship", "truck"};
    }
    if (kind == "fashion-mnist") {
        return {"T-shirt/top", "trouser", "pullover", "dress", "coat",
                "sandal",      "shirt",   "sneaker",  "bag",   "ankle boot"};
    }
    return {};  // MNIST's labels are the digits themselves
}

std::string label_text(const DataState& data, int image) {
    if (!data.data || image < 0 || image >= data.data->size()) return "-";
    const int label = data.data->labels[static_cast<size_t>(image)];
    std::string text = std::to_string(label);
    if (label < static_cast<int>(data.class_names.size())) {
        text += " (" + data.class_names[static_cast<size_t>(label)] + ")";
    }
    return text;
}

bool start_image_averages(StudioState& state, std::string* error) {
    InspectState& in = state.inspect;
    if (!in.has_target || !state.model.loaded()) {
        *error = "inspect a pixel first";
        return false;
    }
    const Images& image = in.target.pixels;
    // Averages over a half-generated image would count the unknown sub-pixels as zeros.
    if (image.filled != image.seq_len()) {
        *error = "the image is not complete, so there is nothing to average over";
        return false;
    }
    InspectRequest request;
    request.image = image.tokens;
    request.sub_pixels = {in.target.sub_pixel};
    request.image_measures = true;
    state.retired.retire(std::move(in.measures));
    in.over_image.clear();
    if (!try_start([&] { in.measures = start_inspect(state.model.handle, request); }, error)) {
        return false;
    }
    CompareState& cmp = state.compare;
    state.retired.retire(std::move(cmp.measures));
    cmp.over_image.clear();
    if (cmp.model.loaded() && same_shape(cmp.model.summary, image)) {
        try_start([&] { cmp.measures = start_inspect(cmp.model.handle, request); }, &cmp.message);
    }
    return true;
}

bool start_compare_samples(StudioState& state, std::string* error) {
    if (!need_model(state, error)) return false;
    CompareState& c = state.compare;
    if (!c.model.loaded()) {
        *error = "open a second model first";
        return false;
    }
    SampleRequest request;
    request.count = std::clamp(c.count, 1, 64);
    request.seed = static_cast<uint64_t>(c.seed);
    request.publish_every = std::max<int64_t>(1, state.model.summary.image_width);
    request.publish_interval_s = 1.0 / kPublishHz;
    state.retired.retire(std::move(c.sample_a));
    state.retired.retire(std::move(c.sample_b));
    return try_start(
        [&] {
            c.sample_a = start_sampling(state.model.handle, request);
            c.sample_b = start_sampling(c.model.handle, request);
        },
        error);
}

bool start_train(StudioState& state, std::string* error) {
    TrainState& t = state.train;
    if (t.job && !t.job->done()) {
        *error = "a training run is already going; stop it first";
        return false;
    }
    // The same merge and checks as `krause train`, before any work starts.
    TrainConfig config = t.config;
    try {
        if (!config.resume.empty()) config = resume_config(config, t.given);
        config.validate();
    } catch (const std::exception& e) {
        *error = e.what();
        return false;
    }
    // A data set named without a folder is read from the studio's data folder (the Data window);
    // the form keeps the bare name, so that it follows that folder.
    const std::string named = config.data;
    if (named.find(':') == std::string::npos) {
        const std::string dir = data_dir_for(state, named);
        if (dir.empty()) {
            *error = data_missing_message(state, named);
            return false;
        }
        config.data = data_spec(named, dir);
    }
    if (!t.long_run_confirmed) {
        TrainEstimate estimate;
        try {
            estimate = estimate_training(config);
        } catch (const std::exception& e) {
            *error = e.what();
            return false;
        }
        // A time budget is a length the user chose: nothing to warn about.
        if (estimate.on_cpu && config.minutes == 0 && estimate.seconds > kLongRunSeconds) {
            // Nothing starts until the user confirms; the window asks (studio_view.cpp).
            t.long_run_warning = long_run_text(estimate);
            return true;
        }
    }
    t.long_run_confirmed = false;
    t.long_run_warning.clear();
    t.config = config;  // the form shows what runs, a resumed run's stored options included
    t.config.data = named;
    t.message.clear();
    t.shown.reset();
    t.preview_tokens.clear();
    t.preview.clear();
    t.job.reset();
    if (!try_start([&] { t.job = start_training(config); }, error)) return false;
    adopt_training_folder(state, named);
    return true;
}

std::string long_run_text(const TrainEstimate& e) {
    char text[320];
    std::snprintf(text, sizeof text,
                  "This run trains on the CPU (%d threads) and will take about %s: %lld steps at "
                  "roughly %s a step, estimated from the preset's size and the batch. A GPU, a "
                  "smaller preset or fewer steps make it shorter.",
                  e.threads, format_duration(e.seconds).c_str(), static_cast<long long>(e.steps),
                  format_duration(e.seconds_per_step).c_str());
    return text;
}

}  // namespace krause::ui
