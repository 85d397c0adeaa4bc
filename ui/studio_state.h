// The state of the studio window: models, jobs and panel settings. Panels are functions over it;
// the UI thread alone reads and writes it, workers are reached only through their Jobs.
#pragma once

#include "data/dataset.h"
#include "training/bundled_models.h"
#include "training/engine.h"
#include "ui/dynamics_view.h"
#include "ui/heatmap.h"
#include "ui/image_grid.h"
#include "ui/plots.h"
#include "ui/prompt_canvas.h"
#include "ui/run_curves.h"
#include "ui/preferences.h"

#include <array>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace krause::ui {

enum class Tab { Model, Sample, Complete, Inspect, Compare, Train, Dynamics };
const char* to_string(Tab tab);
bool parse_tab(const std::string& name, Tab* tab);

// A job was started and has not ended.
template <class Snapshot>
bool running(const std::unique_ptr<Job<Snapshot>>& job) {
    return job && !job->done();
}

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
    RunCurves run;  // the curves of the metrics.jsonl beside the checkpoint, if any
};

// One loaded model (the main one, or the second one of the Compare panel).
struct ModelSlot {
    std::string path_field;
    std::shared_ptr<ModelHandle> handle;
    ModelSummary summary;
    RunCurves run;
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
    int png_scale = 1;  // PNG pixels per image pixel
    std::unique_ptr<Job<SampleSnapshot>> job;
    std::shared_ptr<const SampleSnapshot> shown;
    ImageGrid grid;
    std::string message;
};

// The one data folder of the studio, shared by every panel that loads data (Data window).
struct DataFolderState {
    std::string root;      // the folder chosen in the studio; "" = the search order alone
    std::string base_url;  // a mirror for downloads ($KRAUSE_DATA_MIRROR); "" = official URLs
    std::map<std::string, DataLookup> found;  // per kind name: the folder in use, where looked
    bool window_open = false;
    FileBrowser browser;  // for picking the folder
    std::string fetch_kind;
    std::unique_ptr<Job<FetchSnapshot>> fetch;
    std::shared_ptr<const FetchSnapshot> fetch_shown;
    std::string message, error;
};

struct LoadedData {
    std::shared_ptr<const Dataset> data;
    std::vector<std::string> class_names;
};

struct DataState {
    std::string kind = "mnist";
    std::string dir;  // the kind's folder, from the Data window (data_dir_for)
    std::unique_ptr<Job<LoadedData>> loading;
    std::shared_ptr<const Dataset> data;
    std::string error;
    int selected = 0;
    int page = 0;
    std::vector<std::string> class_names;  // label names of the loaded set
    ImageGrid page_grid;                   // thumbnails of the current page
    int page_shown = -1;
    ImageGrid selected_grid;
    int selected_shown = -1;
};

struct CompleteState {
    bool drawn = false;   // the prompt comes from the canvas, not a test image
    PromptCanvas canvas;  // the model's image shape
    std::string canvas_png = "prompt.png";
    int rows = 14;
    int count = 4;
    float temperature = 1.0f;
    int seed = 1;
    std::unique_ptr<Job<SampleSnapshot>> job;
    std::shared_ptr<const SampleSnapshot> shown;
    ImageGrid prompt;    // the kept rows, the rest unknown
    ImageGrid original;  // the whole image the prompt came from
    ImageGrid completions;
    std::string png_path = "completions.png";
    int png_scale = 4;
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
    // The model's prediction of the inspected sub-pixel (256 probabilities), from the probe.
    std::vector<float> next_probs;
    std::string png_path = "attention.png";  // the grid; the enlarged map adds "-L<l>-H<h>"
    int png_scale = 8;
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

// How training curves are drawn, in the Train and Model panels alike.
// The token-state measures recorded at every evaluation of a training run, as the Train tab's
// map offers them and the script's chart.states names them.
struct StateMeasure {
    const char* key;    // the chart.states value
    const char* label;  // the map's combo
    const char* name;   // its colour scale
    std::vector<std::vector<double>> TrainSnapshot::*values;
};
inline const std::array<StateMeasure, 4> kStateMeasures = {{
    {"cosine", "mean pairwise cosine", "cosine", &TrainSnapshot::state_cosine},
    {"consensus", "distance to consensus", "distance", &TrainSnapshot::state_consensus},
    {"rank", "effective rank", "rank", &TrainSnapshot::state_rank},
    {"clusters", "clusters at 0.5 x median distance", "clusters", &TrainSnapshot::state_clusters},
}};

struct CurveView {
    float smoothing = 0.6f;  // EMA weight of the training loss (0: raw)
    bool log_y = false;
    bool test_predicted = false;  // test BPD over the T-1 predicted sub-pixels, not all T
    int state_measure = 0;        // the token-state map's measure, kStateMeasures' index
};

// A chart export in flight: the CSV is written at once, the PNG when the frame is rendered.
struct ChartExport {
    std::string base = "curves";  // writes BASE.png and BASE.csv
    bool requested = false;
    std::shared_ptr<CaptureResult> png;
    std::string message;
};

struct TrainState {
    TrainConfig config;
    // The options the user set (JSON names): on resume these replace the run's stored values.
    std::set<std::string> given;
    std::unique_ptr<Job<TrainSnapshot>> job;
    std::shared_ptr<const TrainSnapshot> shown;
    std::vector<uint8_t> preview_tokens;  // what the preview grid shows, to skip re-uploads
    ImageGrid preview;
    std::string message;
    CurveView view;
    std::vector<RunCurves> runs;  // metrics.jsonl files shown beside the live run
    std::string run_path;         // the field naming the next one
    std::string runs_message;
    ChartExport chart_export;
    // A CPU run estimated to take hours waits for the user to confirm it (see long_run_text).
    std::string long_run_warning;
    bool long_run_confirmed = false;  // the user chose to start it anyway
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
    std::vector<BundledModel> bundled;  // read once at start
    std::string bundled_error;          // why the bundled models' list could not be read

    SampleState sample;
    DataFolderState folders;
    DataState data;
    CompleteState complete;
    InspectState inspect;
    CompareState compare;
    TrainState train;
    DynamicsState dynamics;

    ViewPrefs view;
    float content_scale = 1.0f;  // the monitor's, as GLFW reports it
    bool view_changed = true;    // the theme or text size is applied before the next frame
    bool quit_requested = false;
    bool focus_checkpoint = false;  // put the cursor into the Model tab's checkpoint field
    // The text field being edited in the last frame, by name, where its panel names it (for the
    // state dump); "" when none is.
    std::string active_field;
    std::string script_error;       // a failed script step, shown for its screenshot

    JobRetirer retired;
    FrameTimes frames;
    // The last PNG written by an export, for the user and the state dump.
    struct {
        std::string path;
        int width = 0, height = 0;
    } last_export;
    // Screen rectangles (x, y, w, h) of the main views in the last frame, for the state dump.
    std::map<std::string, ImVec4> regions;
};

void select_tab(StudioState& state, Tab tab);

// Calls visit(job) with every job slot of the studio (null or not): the one list behind "is a job
// running" and "did a job publish", so that a new kind of job is seen by both.
template <class Visit>
void for_each_job(const StudioState& s, Visit&& visit) {
    visit(s.model.opening);
    visit(s.compare.model.opening);
    visit(s.data.loading);
    visit(s.sample.job);
    visit(s.complete.job);
    visit(s.inspect.job);
    visit(s.inspect.measures);
    visit(s.compare.inspect);
    visit(s.compare.measures);
    visit(s.compare.sample_a);
    visit(s.compare.sample_b);
    visit(s.train.job);
    visit(s.folders.fetch);
    visit(s.dynamics.main.job);
    visit(s.dynamics.second.job);
}

bool any_job_running(const StudioState& state);
bool training_running(const StudioState& state);
// What the Dynamics tab's particle boxes and charts say while a run has nothing to show.
const char* dynamics_waiting_text(const StudioState& state);

}  // namespace krause::ui
