// The per-frame bookkeeping of the studio: first-start choices, adopting models and data sets
// that finished loading, and moving the newest job snapshots into textures.
#include "ui/actions.h"
#include "ui/data_folder.h"
#include "ui/recent_files.h"

#include <algorithm>
#include <filesystem>

namespace krause::ui {

namespace {

constexpr int kDataPage = 32;  // thumbnails per page of the data set browser

// Adopts a finished open; the slot keeps its old model when the new one failed to load.
void adopt_open(StudioState& state, ModelSlot& slot, bool main_slot) {
    if (!slot.opening || !slot.opening->done()) return;
    auto opening = std::move(slot.opening);
    if (opening->state() != JobState::Finished) {
        slot.error = opening->error().empty() ? "opening was stopped" : opening->error();
        return;
    }
    const auto opened = opening->snapshot();
    slot.handle = opened->handle;
    slot.summary = opened->summary;
    slot.run = opened->run;
    slot.error.clear();
    remember_recent(state.recent, slot.summary.path.empty() ? slot.path_field : slot.summary.path);
    // A second model explains the inspected pixel as soon as it is open.
    if (!main_slot) probe_second_model(state);
    if (main_slot) {
        state.notice.clear();
        state.complete.rows = static_cast<int>(slot.summary.image_height / 2);
        state.inspect.channel =
            std::min<int>(state.inspect.channel, static_cast<int>(slot.summary.image_channels) - 1);
        if (state.browser.folder.empty() || state.browser.listed.empty()) {
            state.browser.folder = std::filesystem::path(slot.summary.path).parent_path().string();
        }
    }
}

template <class Snapshot>
std::shared_ptr<const Snapshot> newer(const std::unique_ptr<Job<Snapshot>>& job,
                                      const std::shared_ptr<const Snapshot>& shown) {
    if (!job) return nullptr;
    auto latest = job->snapshot();
    return latest == shown ? nullptr : latest;
}

void update_samples(std::unique_ptr<Job<SampleSnapshot>>& job,
                    std::shared_ptr<const SampleSnapshot>& shown, ImageGrid& grid) {
    if (auto latest = newer(job, shown)) {
        shown = latest;
        if (latest->images.count > 0) grid.set(latest->images);
    }
}

Images dataset_images(const Dataset& data, int first, int count) {
    Images images;
    images.count = std::max(0, std::min<int>(count, static_cast<int>(data.size()) - first));
    images.height = data.height;
    images.width = data.width;
    images.channels = data.channels;
    images.tokens.assign(data.image(first), data.image(first) + images.count * data.seq_len());
    images.filled = data.seq_len();
    return images;
}

void update_data(StudioState& state) {
    DataState& d = state.data;
    if (d.loading && d.loading->done()) {
        auto loading = std::move(d.loading);
        if (loading->state() == JobState::Finished) {
            d.data = loading->snapshot()->data;
            d.class_names = loading->snapshot()->class_names;
            d.error.clear();
            d.selected =
                std::clamp(d.selected, 0, std::max(0, static_cast<int>(d.data->size()) - 1));
            d.page = d.selected / kDataPage;
            d.page_shown = d.selected_shown = -1;
        } else {
            d.error = loading->error();
        }
    }
    if (!d.data || d.data->size() == 0) return;
    const int pages = static_cast<int>((d.data->size() + kDataPage - 1) / kDataPage);
    d.page = std::clamp(d.page, 0, pages - 1);
    d.selected = std::clamp(d.selected, 0, static_cast<int>(d.data->size()) - 1);
    if (d.page_shown != d.page) {
        d.page_grid.set(dataset_images(*d.data, d.page * kDataPage, kDataPage));
        d.page_shown = d.page;
    }
    if (d.selected_shown != d.selected) {
        d.selected_grid.set(dataset_images(*d.data, d.selected, 1));
        d.selected_shown = d.selected;
    }
}

// Keeps the image averages once their job finished; a failure is reported with the maps.
void adopt_measures(const std::unique_ptr<Job<InspectSnapshot>>& job,
                    std::vector<LayerMeasures>& over_image, std::string& message) {
    if (!job || !job->done() || !over_image.empty()) return;
    if (job->state() == JobState::Finished && job->snapshot()->ready) {
        over_image = job->snapshot()->result.over_image;
    } else if (job->state() == JobState::Failed) {
        message = "averages over the image failed: " + job->error();
    }
}

void update_train(TrainState& t) {
    auto latest = newer(t.job, t.shown);
    if (!latest) return;
    t.shown = latest;
    const Images& preview = latest->preview;
    if (preview.count > 0 && preview.tokens != t.preview_tokens) {
        t.preview.set(preview);
        t.preview_tokens = preview.tokens;
    }
}

}  // namespace

int data_page_size() {
    return kDataPage;
}

void init_studio(StudioState& state, const std::string& checkpoint) {
    state.recent = load_recent();
    std::error_code ec;
    state.browser.folder = std::filesystem::current_path(ec).string();
    init_data_folders(state);
    try {
        state.bundled = bundled_models();
    } catch (const std::runtime_error& e) {
        state.bundled_error = e.what();
    }
    std::string path = checkpoint;
    if (path.empty()) path = bundled_model_path();
    if (!path.empty()) {
        open_model(state, state.model, path);
        select_tab(state, Tab::Sample);
    } else {
        state.notice =
            "No model is loaded and none ships with this build. Open a checkpoint, or "
            "train a model first.";
        select_tab(state, Tab::Model);
    }
}

void update_studio(StudioState& state) {
    state.retired.reap();
    adopt_open(state, state.model, true);
    adopt_open(state, state.compare.model, false);
    update_data(state);
    update_data_fetch(state);

    update_samples(state.sample.job, state.sample.shown, state.sample.grid);
    update_samples(state.complete.job, state.complete.shown, state.complete.completions);
    update_samples(state.compare.sample_a, state.compare.shown_a, state.compare.grid_a);
    update_samples(state.compare.sample_b, state.compare.shown_b, state.compare.grid_b);

    InspectState& in = state.inspect;
    if (in.job) {
        const auto snapshot = in.job->snapshot();
        in.maps.update(snapshot, in.target, in.style);
        if (snapshot && snapshot->ready && in.next_probs.empty() && !snapshot->next_probs.empty()) {
            in.next_probs = snapshot->next_probs.front();
        }
    }
    if (in.job && in.job->state() == JobState::Failed) in.message = in.job->error();
    adopt_measures(in.measures, in.over_image, in.message);
    CompareState& c = state.compare;
    if (c.inspect) c.maps.update(c.inspect->snapshot(), in.target, in.style);
    adopt_measures(c.measures, c.over_image, c.message);

    update_train(state.train);
}

}  // namespace krause::ui
