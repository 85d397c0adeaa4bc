// Starting jobs from the UI: requests are built from the panels' settings; jobs being replaced
// are retired (stopped, joined later) so the UI thread never waits on a worker.
#include "ui/actions.h"

#include "ui/panels.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

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

}  // namespace

void open_model(StudioState& state, ModelSlot& slot, const std::string& path) {
    slot.path_field = path;
    slot.error.clear();
    state.retired.retire(std::move(slot.opening));
    slot.opening = std::make_unique<Job<OpenedModel>>([path](JobContext<OpenedModel>& context) {
        OpenedModel opened;
        opened.handle = krause::open_model(path);
        opened.summary = summarize(*opened.handle);
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

std::string default_data_dir(const std::string& kind) {
    const char* root = std::getenv("KRAUSE_DATA_DIR");
    if (!root || !*root) return "";
    try {
        return (std::filesystem::path(root) / default_subdir(parse_dataset_kind(kind))).string();
    } catch (const std::exception&) {
        return "";
    }
}

std::string data_spec(const std::string& kind, const std::string& dir) {
    return dir.empty() ? kind : kind + ":" + dir;
}

void load_data(StudioState& state) {
    DataState& d = state.data;
    d.error.clear();
    state.retired.retire(std::move(d.loading));
    const std::string spec = data_spec(d.kind, d.dir);
    d.loading = std::make_unique<Job<LoadedData>>([spec](JobContext<LoadedData>& context) {
        LoadedData loaded;
        loaded.data =
            std::make_shared<const Dataset>(load_dataset(parse_dataset_spec(spec), Split::Test));
        context.publish(std::move(loaded));
    });
}

bool start_complete(StudioState& state, std::string* error) {
    if (!need_model(state, error)) return false;
    const DataState& d = state.data;
    if (!d.data || d.data->size() == 0) {
        *error = "load a data set first";
        return false;
    }
    const Dataset& data = *d.data;
    const ModelSummary& m = state.model.summary;
    if (m.image_height != data.height || m.image_width != data.width ||
        m.image_channels != data.channels) {
        *error = "the model takes " + shape_text(m.image_height, m.image_width, m.image_channels) +
                 " images, the data set has " + shape_text(data.height, data.width, data.channels);
        return false;
    }
    CompleteState& c = state.complete;
    c.rows = std::clamp<int>(c.rows, 1, static_cast<int>(data.height) - 1);
    const int index = std::clamp(d.selected, 0, static_cast<int>(data.size()) - 1);
    const int64_t prefix_len = c.rows * data.width * data.channels;

    SampleRequest request;
    request.count = std::clamp(c.count, 1, 16);
    request.temperature = c.temperature;
    request.seed = static_cast<uint64_t>(c.seed);
    request.prefix.assign(data.image(index), data.image(index) + prefix_len);
    request.prefix_len = prefix_len;
    request.publish_every = std::max<int64_t>(1, data.width * data.channels / 4);
    request.publish_interval_s = 1.0 / kPublishHz;

    Images prompt;
    prompt.count = 1;
    prompt.height = data.height;
    prompt.width = data.width;
    prompt.channels = data.channels;
    prompt.tokens.assign(data.image(index), data.image(index) + data.seq_len());
    prompt.filled = prefix_len;
    c.prompt.set(prompt);
    prompt.filled = data.seq_len();
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
    CompareState& cmp = state.compare;
    state.retired.retire(std::move(cmp.inspect));
    state.retired.retire(std::move(cmp.measures));
    cmp.maps.clear();
    cmp.over_image.clear();
    if (cmp.model.loaded() && same_shape(cmp.model.summary, one)) {
        try_start([&] { cmp.inspect = start_inspect(cmp.model.handle, request); }, &cmp.message);
    }
    if (in.averages_always || one.seq_len() <= kAutoAveragesMax) start_image_averages(state, error);
    if (in.jump_on_click && state.tab != Tab::Compare) select_tab(state, Tab::Inspect);
    return true;
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
    TrainConfig config = t.config;
    config.data = data_spec(t.data_kind, t.data_dir);
    try {
        config.validate();
    } catch (const std::exception& e) {
        *error = e.what();
        return false;
    }
    if (!t.long_run_confirmed) {
        TrainEstimate estimate;
        try {
            estimate = estimate_training(config);
        } catch (const std::exception& e) {
            *error = e.what();
            return false;
        }
        if (estimate.on_cpu && estimate.seconds > kLongRunSeconds) {
            // Nothing starts until the user confirms; the window asks (studio_view.cpp).
            t.long_run_warning = long_run_text(estimate);
            return true;
        }
    }
    t.long_run_confirmed = false;
    t.long_run_warning.clear();
    t.message.clear();
    t.shown.reset();
    t.preview_tokens.clear();
    t.preview.clear();
    t.job.reset();
    return try_start([&] { t.job = start_training(config); }, error);
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
