// Train panel: a TrainConfig form, Start / Pause / Stop, and the run as it goes: progress, loss
// and test BPD curves, the preview grid of the last evaluation, and sink mass per layer over time.
#include "ui/actions.h"
#include "ui/data_folder.h"
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
    if (choice("data set", &t.data_kind, kKinds)) t.data_dir = data_dir_for(state, t.data_kind);
    data_folder_line(state, t.data_kind);
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

void curves(const TrainSnapshot& s, float width) {
    PlotSeries loss{"train loss", {}, {}, kColorPixel, false};
    for (const auto& p : s.loss_curve) {
        loss.x.push_back(static_cast<double>(p.step));
        loss.y.push_back(p.value);
    }
    PlotSeries test{"test BPD (T dims)", {}, {}, kColorImage, true};
    for (const auto& p : s.test_curve) {
        test.x.push_back(static_cast<double>(p.step));
        test.y.push_back(p.value);
    }
    PlotSeries pred{"test BPD (T-1)", {}, {}, kColorSecond, true};
    for (const auto& p : s.test_curve_pred) {
        pred.x.push_back(static_cast<double>(p.step));
        pred.y.push_back(p.value);
    }
    PlotOptions options;
    options.title = "bits per sub-pixel";
    options.x_label = "step";
    options.integer_x = true;
    line_chart("curves", ImVec2(width, 220), {loss, test, pred}, options);
}

}  // namespace

void draw_train_panel(StudioState& state) {
    TrainState& t = state.train;
    if (!ImGui::BeginTable("train_layout", 2, ImGuiTableFlags_Resizable)) return;
    ImGui::TableSetupColumn("form", ImGuiTableColumnFlags_WidthFixed, kFormWidth);
    ImGui::TableNextColumn();
    config_form(state);
    ImGui::Spacing();
    run_controls(state);
    show_error(t.message);

    ImGui::TableNextColumn();
    if (!t.job) {
        ImGui::TextWrapped(
            "Choose a data set and a preset, then Start. The curves, the preview "
            "and the sink mass of every layer appear here as the run goes.");
        ImGui::EndTable();
        return;
    }
    ImGui::Text("run: %s%s", job_state(t.job).c_str(), t.job->paused() ? " (paused)" : "");
    if (t.job->state() == JobState::Failed) show_error("training failed: " + t.job->error());
    if (!t.shown) {
        ImGui::TextUnformatted("starting ...");
        ImGui::EndTable();
        return;
    }
    const TrainSnapshot& s = *t.shown;
    show_progress(s.progress, job_state(t.job));
    ImGui::Text("step %lld   loss %.4f bits/dim   lr %.3e   %s tokens/s",
                static_cast<long long>(s.step), s.loss_bpd, s.lr,
                format_count(s.tokens_per_s).c_str());
    if (!s.status.empty()) ImGui::TextWrapped("%s", s.status.c_str());
    if (!s.checkpoint.empty()) {
        ImGui::Text("checkpoint: %s", s.checkpoint.c_str());
        ImGui::SameLine();
        if (ImGui::Button("Open in Model panel")) {
            const std::string path = s.checkpoint;
            open_model(state, state.model, path);
        }
    }

    const float width = ImGui::GetContentRegionAvail().x;
    curves(s, width);
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
    matrix_chart("sink", ImVec2(std::max(200.0f, width * 0.5f), 200), s.sink_mass, steps, "layer",
                 "evaluation", "sink mass");
    ImGui::EndGroup();
    ImGui::EndTable();
}

}  // namespace krause::ui
