// The state of the studio window: models, jobs and panel settings. Panels are functions over it;
// the UI thread alone reads and writes it, workers are reached only through their Jobs.
#pragma once

#include "training/dataset.h"
#include "training/engine.h"
#include "ui/dynamics_view.h"
#include "ui/heatmap.h"
#include "ui/image_grid.h"
#include "ui/plots.h"

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace krause::ui {

enum class Tab { Model, Sample, Complete, Inspect, Compare, Train, Dynamics };
const char* to_string(Tab tab);
bool parse_tab(const std::string& name, Tab* tab);

// "none" when no job was started, else the job's state.
template <class Snapshot>
std::string job_state(const std::unique_ptr<Job<Snapshot>>& job) {
    return job ? to_string(job->state()) : "none";
}

// Jobs replaced while still running finish here, so that starting a new job never blocks the UI
// thread on joining the old one.
class JobRetirer {
public:
    template <class Snapshot>
    void retire(std::unique_ptr<Job<Snapshot>> job) {
        if (!job) return;
        job->request_stop();
        const Job<Snapshot>* raw = job.get();
        entries_.push_back({std::shared_ptr<void>(std::move(job)), [raw] { return raw->done(); }});
    }
    void reap();
    size_t size() const { return entries_.size(); }
    void clear() { entries_.clear(); }

private:
    struct Entry {
        std::shared_ptr<void> owner;
        std::function<bool()> done;
    };
    std::vector<Entry> entries_;
};

struct OpenedModel {
    std::shared_ptr<ModelHandle> handle;
    ModelSummary summary;
};

// One loaded model (the main one, or the second one of the Compare panel).
struct ModelSlot {
    std::string path_field;
    std::shared_ptr<ModelHandle> handle;
    ModelSummary summary;
    std::string error;
    std::unique_ptr<Job<OpenedModel>> opening;
    bool loaded() const { return handle != nullptr; }
};

struct FileBrowser {
    std::string folder;
    std::vector<std::string> folders, files;  // names inside `folder`
    std::string listed;                       // the folder the lists belong to
    std::string error;
};

struct SampleState {
    int count = 16;
    float temperature = 1.0f;
    int seed = 1;
    int tokens_per_frame = 4;  // sub-pixels per image per frame, to watch them appear
    bool fast = false;         // as fast as possible instead
    std::string png_path = "samples.png";
    std::unique_ptr<Job<SampleSnapshot>> job;
    std::shared_ptr<const SampleSnapshot> shown;
    ImageGrid grid;
    std::string message;
};

struct LoadedData {
    std::shared_ptr<const Dataset> data;
};

struct DataState {
    std::string kind = "mnist";
    std::string dir;  // empty: the default under $KRAUSE_DATA_DIR
    std::unique_ptr<Job<LoadedData>> loading;
    std::shared_ptr<const Dataset> data;
    std::string error;
    int selected = 0;
    int page = 0;
    ImageGrid page_grid;  // thumbnails of the current page
    int page_shown = -1;
    ImageGrid selected_grid;
    int selected_shown = -1;
};

struct CompleteState {
    int rows = 14;
    int count = 4;
    float temperature = 1.0f;
    int seed = 1;
    std::unique_ptr<Job<SampleSnapshot>> job;
    std::shared_ptr<const SampleSnapshot> shown;
    ImageGrid prompt;    // the kept rows, the rest unknown
    ImageGrid original;  // the whole image the prompt came from
    ImageGrid completions;
    std::string message;
};

struct InspectState {
    ProbeTarget target;
    bool has_target = false;
    int channel = 0;  // used for clicks on colour images
    bool jump_on_click = true;
    MapStyle style;
    std::unique_ptr<Job<InspectSnapshot>> job;
    AttentionMaps maps;
    // The averages over the whole image cost O(T^2) per layer, far more than one pixel, so they
    // come from a second job and the maps appear without waiting for them.
    std::unique_ptr<Job<InspectSnapshot>> measures;
    std::vector<LayerMeasures> over_image;
    bool averages_always = false;  // also for large images, where they are slow
    ImageGrid source;              // the inspected image, clickable
    int layer = 0, head = 0;
    std::string message;
};

struct CompareState {
    ModelSlot model;
    std::unique_ptr<Job<InspectSnapshot>> inspect;
    AttentionMaps maps;
    std::unique_ptr<Job<InspectSnapshot>> measures;
    std::vector<LayerMeasures> over_image;
    int layer = 0;  // the layer whose maps are shown side by side
    int count = 8;
    int seed = 1;
    std::unique_ptr<Job<SampleSnapshot>> sample_a, sample_b;
    std::shared_ptr<const SampleSnapshot> shown_a, shown_b;
    ImageGrid grid_a, grid_b;
    std::string message;
};

struct TrainState {
    TrainConfig config;
    std::string data_kind = "mnist";
    std::string data_dir;
    std::unique_ptr<Job<TrainSnapshot>> job;
    std::shared_ptr<const TrainSnapshot> shown;
    std::vector<uint8_t> preview_tokens;  // what the preview grid shows, to skip re-uploads
    ImageGrid preview;
    std::string message;
};

// Per-frame times, kept whole so that percentiles cover the run.
struct FrameTimes {
    std::vector<float> frame_ms;    // start of a frame to the start of the next
    std::vector<float> work_ms;     // building and rendering the frame, without waiting
    std::vector<uint8_t> training;  // a training job was running during the frame
    std::vector<uint8_t> excluded;  // a screenshot was written during the frame
};

struct StudioState {
    Tab tab = Tab::Model;
    // Frames left during which the tab bar is told to show `tab`; the tab bar needs one frame to
    // switch, and a click on a tab must not be overridden afterwards.
    int tab_request_frames = 0;
    ModelSlot model;
    FileBrowser browser;
    std::vector<std::string> recent;
    std::string notice;  // the first-start message, shown on the Model panel

    SampleState sample;
    DataState data;
    CompleteState complete;
    InspectState inspect;
    CompareState compare;
    TrainState train;
    DynamicsState dynamics;

    JobRetirer retired;
    FrameTimes frames;
    // Screen rectangles (x, y, w, h) of the main views in the last frame, for the state dump.
    std::map<std::string, ImVec4> regions;
};

void select_tab(StudioState& state, Tab tab);
bool any_job_running(const StudioState& state);
bool training_running(const StudioState& state);

}  // namespace krause::ui
