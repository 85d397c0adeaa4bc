// Train panel: a form of every training option (ui/train_form.h), Start / Pause / Stop, and the run
// as it goes: progress, loss and test BPD curves, the preview grid of the last evaluation, and sink
// mass per layer and the token states' collapse measures over time.
#include "ui/actions.h"
#include "ui/data_folder.h"
#include "ui/panels.h"
#include "ui/train_form.h"

#include <imgui.h>
#include <imgui_stdlib.h>

#include <algorithm>
#include <optional>
#include <type_traits>
#include <variant>

namespace krause::ui {

namespace {

constexpr float kFormWidth = 380.0f;

void tooltip(const OptionSpec& o) {
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("--%s: %s", o.flag, o.help);
}

// KIND[:DIR] as a kind combo and a folder field (empty: the studio's data folder, which the
// Data window shows and sets).
bool data_set_field(const OptionSpec& o, std::string* spec) {
    const size_t colon = spec->find(':');
    std::string kind = spec->substr(0, colon);
    std::string dir = colon == std::string::npos ? "" : spec->substr(colon + 1);
    bool changed = choice_combo(o.label, &kind, o.choices());
    if (changed) dir.clear();
    tooltip(o);
    changed |= ImGui::InputTextWithHint("data folder", "empty: the studio's data folder", &dir);
    if (changed) *spec = dir.empty() ? kind : kind + ":" + dir;
    return changed;
}

// A model option that is unset until its box is ticked; unset, it shows the preset's value.
template <class T>
bool preset_field(const OptionSpec& o, TrainConfig& c, std::optional<T>* value) {
    const auto fallback = preset_value(o, c);
    bool set = value->has_value();
    bool changed = ImGui::Checkbox(("##set-" + std::string(o.name)).c_str(), &set);
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("tick to override the preset's value");
    if (changed)
        *value = set ? std::optional<T>(static_cast<T>(fallback.value_or(1))) : std::nullopt;
    ImGui::SameLine();
    ImGui::BeginDisabled(!set);
    T shown = set ? **value : static_cast<T>(fallback.value_or(0));
    bool edited = false;
    if constexpr (std::is_floating_point_v<T>) {
        edited = ImGui::InputDouble(o.label, &shown, 0.0, 0.0, "%.4g");
    } else {
        edited = ImGui::InputScalar(o.label, ImGuiDataType_S64, &shown);
    }
    ImGui::EndDisabled();
    if (edited && set) *value = shown;
    return changed || edited;
}

template <class T>
bool number_field(const OptionSpec& o, T* value) {
    if constexpr (std::is_same_v<T, double>) {
        return ImGui::InputDouble(o.label, value, 0.0, 0.0, "%.4g");
    } else if constexpr (std::is_same_v<T, int>) {
        return ImGui::InputInt(o.label, value);
    } else if constexpr (std::is_same_v<T, uint64_t>) {
        return ImGui::InputScalar(o.label, ImGuiDataType_U64, value);
    } else {
        return ImGui::InputScalar(o.label, ImGuiDataType_S64, value);
    }
}

bool draw_field(const TrainFormField& f, TrainConfig& c) {
    const OptionSpec& o = *f.option;
    return std::visit(
        [&](auto member) {
            auto* value = &(c.*member);
            using T = std::decay_t<decltype(*value)>;
            bool changed = false;
            if constexpr (std::is_same_v<T, std::string>) {
                if (f.widget == FormWidget::DataSet) return data_set_field(o, value);
                changed = f.widget == FormWidget::Combo
                              ? choice_combo(o.label, value, o.choices())
                              : ImGui::InputTextWithHint(o.label, "empty", value);
            } else if constexpr (std::is_same_v<T, std::optional<int64_t>> ||
                                 std::is_same_v<T, std::optional<double>>) {
                changed = preset_field(o, c, value);
            } else {
                changed = number_field(o, value);
            }
            tooltip(o);
            return changed;
        },
        o.field);
}

void config_form(StudioState& state) {
    TrainState& t = state.train;
    ImGui::PushItemWidth(180);
    std::optional<OptionGroup> group;
    for (const auto& field : train_form_fields()) {
        if (group != field.option->group) {
            group = field.option->group;
            ImGui::Spacing();
            ImGui::TextDisabled("%s", to_string(*group));
            ImGui::Separator();
        }
        // What the user sets counts as given: a resumed run keeps it instead of the stored value.
        if (draw_field(field, t.config)) t.given.insert(field.option->name);
        // A data set without a folder comes from the studio's data folder: say which.
        if (std::string(field.option->name) == "data" &&
            t.config.data.find(':') == std::string::npos) {
            data_folder_line(state, t.config.data);
        }
    }
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
        if (!live->data.empty()) ImGui::TextWrapped("%s", live->data.c_str());
        if (!live->schedule.empty()) ImGui::TextWrapped("%s", live->schedule.c_str());
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
    // Two maps side by side: sink mass per layer, and the token states of the same images
    // (collapse shows as cosine rising toward 1, distance to consensus and effective rank
    // falling, clusters merging).
    ImGui::SameLine(0, 20);
    const float map_w = std::max(220.0f, (ImGui::GetContentRegionAvail().x - 20) / 2);
    const std::vector<long long> steps(s.sink_steps.begin(), s.sink_steps.end());
    ImGui::BeginGroup();
    ImGui::AlignTextToFramePadding();
    ImGui::TextUnformatted("sink mass per layer");
    const ImVec2 sink_at = ImGui::GetCursorScreenPos();
    matrix_chart("sink", ImVec2(map_w, 220), s.sink_mass, steps, "layer", "evaluation",
                 "sink mass");
    record_region(state, "train_sink", ImVec4(sink_at.x, sink_at.y, map_w, 220));
    ImGui::EndGroup();
    ImGui::SameLine(0, 12);
    ImGui::BeginGroup();
    int& measure = t.view.state_measure;
    measure = std::clamp(measure, 0, static_cast<int>(kStateMeasures.size()) - 1);
    ImGui::SetNextItemWidth(std::min(map_w, ImGui::GetFontSize() * 16));
    if (ImGui::BeginCombo("##state_measure", kStateMeasures[measure].label)) {
        for (int i = 0; i < static_cast<int>(kStateMeasures.size()); ++i) {
            if (ImGui::Selectable(kStateMeasures[i].label, i == measure)) measure = i;
        }
        ImGui::EndCombo();
    }
    if (ImGui::IsItemHovered()) {
        ImGui::SetTooltip(
            "Token states of the first 8 evaluation images: state 0 after the "
            "embedding, state l after block l (as in the Dynamics view).");
    }
    const ImVec2 states_at = ImGui::GetCursorScreenPos();
    matrix_chart("states", ImVec2(map_w, 220), s.*kStateMeasures[measure].values, steps, "state",
                 "evaluation", kStateMeasures[measure].name);
    record_region(state, "train_states", ImVec4(states_at.x, states_at.y, map_w, 220));
    ImGui::EndGroup();
}

}  // namespace

}  // namespace krause::ui
