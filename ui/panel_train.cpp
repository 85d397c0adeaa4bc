// Train panel: a TrainConfig form, Start / Pause / Stop, and the run as it goes: progress, loss
// and test BPD curves, the preview grid of the last evaluation, and sink mass per layer over time.
#include "ui/actions.h"
#include "ui/panels.h"

#include <imgui.h>
#include <imgui_stdlib.h>

#include <algorithm>
#include <iterator>

namespace krause::ui {

namespace {

constexpr const char* kKinds[] = {"mnist", "fashion-mnist", "cifar10"};
constexpr const char* kPresets[] = {"mnist", "cifar10", "mnist-small", "mnist-tiny",
                                    "cifar10-small"};
constexpr const char* kAttention[] = {"krause", "softmax", "linear"};
constexpr const char* kDevices[] = {"auto", "cpu", "cuda"};
constexpr const char* kPrecisions[] = {"bf16", "fp32"};
constexpr float kFormWidth = 380.0f;

// A combo over fixed names editing a string.
template <size_t N>
bool choice(const char* label, std::string* value, const char* const (&names)[N]) {
    int index = 0;
    for (size_t i = 0; i < N; ++i) {
        if (*value == names[i]) index = static_cast<int>(i);
    }
    if (!ImGui::Combo(label, &index, names, static_cast<int>(N))) return false;
    *value = names[index];
    return true;
}

bool int_field(const char* label, int64_t* value) {
    return ImGui::InputScalar(label, ImGuiDataType_S64, value);
}

bool real_field(const char* label, double* value, const char* format = "%.4g") {
    return ImGui::InputDouble(label, value, 0.0, 0.0, format);
}

void config_form(StudioState& state) {
    TrainState& t = state.train;
    TrainConfig& c = t.config;
    ImGui::PushItemWidth(180);
    if (choice("data set", &t.data_kind, kKinds)) t.data_dir = default_data_dir(t.data_kind);
    ImGui::InputTextWithHint("data folder", "$KRAUSE_DATA_DIR/<kind>", &t.data_dir);
    choice("preset", &c.preset, kPresets);
    choice("attention", &c.attention, kAttention);
    int_field("batch", &c.batch_size);
    int_field("steps", &c.steps);
    real_field("epochs (0: use steps)", &c.epochs);
    real_field("learning rate", &c.lr, "%.3e");
    real_field("weight decay", &c.weight_decay);
    real_field("warm-up fraction", &c.warmup);
    real_field("final lr", &c.min_lr, "%.1e");
    real_field("grad clip", &c.grad_clip);
    real_field("dropout", &c.dropout);
    real_field("embedding dropout", &c.embed_dropout);
    real_field("second MLP dropout", &c.mlp_dropout);
    real_field("embedding init std", &c.embed_init_std);
    int_field("train images (0: all)", &c.train_limit);
    int_field("evaluate every", &c.eval_every);
    int_field("test images per eval", &c.eval_limit);
    int_field("checkpoint every", &c.checkpoint_every);
    int_field("log every", &c.log_every);
    int_field("preview images", &c.preview_count);
    ImGui::InputScalar("seed", ImGuiDataType_U64, &c.seed);
    choice("device", &c.device, kDevices);
    choice("precision (GPU)", &c.precision, kPrecisions);
    ImGui::InputInt("threads (0: default)", &c.threads);
    ImGui::InputText("output folder", &c.out_dir);
    ImGui::InputTextWithHint("resume from", "a checkpoint, or empty", &c.resume);
    ImGui::PopItemWidth();
}

void run_controls(StudioState& state) {
    TrainState& t = state.train;
    const bool running = t.job && !t.job->done();
    std::string error;
    ImGui::BeginDisabled(running);
    if (ImGui::Button("Start")) {
        if (!start_train(state, &error)) t.message = error;
    }
    ImGui::EndDisabled();
    ImGui::SameLine();
    ImGui::BeginDisabled(!running);
    const bool paused = running && t.job->paused();
    if (ImGui::Button(paused ? "Resume" : "Pause")) t.job->set_paused(!paused);
    ImGui::SameLine();
    if (ImGui::Button("Stop")) t.job->request_stop();
    ImGui::EndDisabled();
}

// The run's state in words: "paused" while it waits, and no ETA once it has ended.
void run_progress(const TrainState& t) {
    std::string label;
    const Progress p = train_progress(t, &label);
    show_progress(p, label);
}

void run_figures(const TrainSnapshot& s, const CurveView& view) {
    if (s.loss_curve.empty()) {
        ImGui::Text("step %lld   loss - (first figure at the first logged step)",
                    static_cast<long long>(s.step));
    } else {
        ImGui::Text("step %lld   loss %.4f bits/dim   lr %.3e   %s tokens/s",
                    static_cast<long long>(s.step), s.loss_bpd, s.lr,
                    format_count(s.tokens_per_s).c_str());
    }
    const auto& test = view.test_predicted ? s.test_curve_pred : s.test_curve;
    if (test.empty()) {
        ImGui::TextDisabled("test BPD: - (after the first evaluation)");
    } else {
        ImGui::Text("test BPD %.4f over %s at step %lld", test.back().value,
                    view.test_predicted ? "the T-1 predicted sub-pixels" : "all T sub-pixels",
                    static_cast<long long>(test.back().step));
    }
}

void run_view(StudioState& state);

}  // namespace

void draw_train_panel(StudioState& state) {
    TrainState& t = state.train;
    if (!ImGui::BeginTable("train_layout", 2, ImGuiTableFlags_Resizable)) return;
    ImGui::TableSetupColumn("form", ImGuiTableColumnFlags_WidthFixed, kFormWidth);
    ImGui::TableNextColumn();
    // The buttons stay at the top; the long form scrolls below them.
    const ImVec2 controls_at = ImGui::GetCursorScreenPos();
    run_controls(state);
    record_region(state, "train_controls",
                  ImVec4(controls_at.x, controls_at.y, kFormWidth,
                         ImGui::GetCursorScreenPos().y - controls_at.y));
    show_error(t.message);
    ImGui::Separator();
    ImGui::BeginChild("form", ImVec2(0, std::max(200.0f, ImGui::GetContentRegionAvail().y)));
    config_form(state);
    ImGui::EndChild();

    ImGui::TableNextColumn();
    ImGui::BeginChild("run_view", ImVec2(0, std::max(200.0f, ImGui::GetContentRegionAvail().y)));
    run_view(state);
    ImGui::EndChild();
    ImGui::EndTable();
}

namespace {

void run_view(StudioState& state) {
    TrainState& t = state.train;
    curve_view_controls(t.view);
    run_overlay_controls(state);
    const TrainSnapshot* live = nullptr;
    if (!t.job) {
        ImGui::TextWrapped(
            "Choose a data set and a preset, then Start. The curves, the preview "
            "and the sink mass of every layer appear here as the run goes. Add a run "
            "folder (or its metrics.jsonl) above to see its curves.");
    } else {
        const bool paused = !t.job->done() && t.job->paused();
        ImGui::Text("run: %s", paused ? "paused" : job_state(t.job).c_str());
        if (t.job->state() == JobState::Failed) show_error("training failed: " + t.job->error());
        if (!t.shown) ImGui::TextUnformatted("starting ...");
        live = t.shown.get();
    }
    if (live) {
        run_progress(t);
        run_figures(*live, t.view);
        if (!live->status.empty()) ImGui::TextWrapped("%s", live->status.c_str());
        if (!live->checkpoint.empty()) {
            ImGui::Text("checkpoint: %s", live->checkpoint.c_str());
            ImGui::SameLine();
            if (ImGui::Button("Open in Model panel")) {
                const std::string path = live->checkpoint;
                open_model(state, state.model, path);
            }
        }
    }
    const float width = ImGui::GetContentRegionAvail().x;
    if (live || !t.runs.empty()) {
        ImVec4 chart;
        const auto csv = training_chart("curves", ImVec2(width, 240), live, t.runs, t.view, &chart);
        record_region(state, "train_curves", chart);
        chart_export_controls(state, csv, chart);
    }
    if (!live) return;
    const TrainSnapshot& s = *live;
    ImGui::BeginGroup();
    ImGui::TextUnformatted("preview (last evaluation)");
    if (!t.preview.empty()) {
        const Images& images = t.preview.images();
        const int columns = std::max(1, std::min(8, t.preview.count()));
        const float scale = std::min(3.0f, fit_scale(ImVec2(width * 0.45f, 400), t.preview.count(),
                                                     columns, images.height, images.width));
        PixelRef clicked;
        ImVec4 rect;
        if (t.preview.draw("preview", scale, columns, &clicked, PixelRef(), &rect)) {
            std::string error;
            if (!inspect_pixel(state, "preview", clicked.image, clicked.row, clicked.col,
                               state.inspect.channel, &error)) {
                t.message = error;
            }
        }
        record_region(state, "train_preview", rect);
    } else {
        ImGui::TextDisabled("after the first evaluation");
    }
    ImGui::EndGroup();
    ImGui::SameLine(0, 20);
    ImGui::BeginGroup();
    ImGui::TextUnformatted("sink mass per layer over training");
    std::vector<long long> steps(s.sink_steps.begin(), s.sink_steps.end());
    const float sink_w = std::max(220.0f, ImGui::GetContentRegionAvail().x - 8);
    const ImVec2 sink_at = ImGui::GetCursorScreenPos();
    matrix_chart("sink", ImVec2(sink_w, 220), s.sink_mass, steps, "layer", "evaluation",
                 "sink mass");
    record_region(state, "train_sink", ImVec4(sink_at.x, sink_at.y, sink_w, 220));
    ImGui::EndGroup();
}

}  // namespace

}  // namespace krause::ui
