// Model panel: open a checkpoint (path, folder browser, recent files) and show what it holds.
#include "ui/actions.h"
#include "ui/panels.h"
#include "ui/recent_files.h"

#include <imgui.h>
#include <imgui_stdlib.h>

#include <filesystem>

namespace krause::ui {

namespace {

void summary_table(const ModelSummary& m) {
    if (!ImGui::BeginTable("summary", 2, ImGuiTableFlags_RowBg | ImGuiTableFlags_BordersInnerV)) {
        return;
    }
    auto row = [](const char* name, const std::string& value) {
        ImGui::TableNextRow();
        ImGui::TableNextColumn();
        ImGui::TextUnformatted(name);
        ImGui::TableNextColumn();
        ImGui::TextWrapped("%s", value.c_str());
    };
    auto num = [](int64_t v) { return std::to_string(v); };
    row("file", m.path);
    row("attention", m.attention);
    row("image", num(m.image_height) + " x " + num(m.image_width) + " x " + num(m.image_channels));
    row("width (d_model)", num(m.d_model));
    row("heads", num(m.n_heads));
    row("layers", num(m.n_layers));
    if (m.attention == "krause") {  // the other kinds have no window or top-K
        row("window W", num(m.window));
        row("top-K", num(m.top_k));
    }
    row("parameters", num(m.parameters) + " (" + format_count(m.parameters) + ")");
    row("training step", num(m.step));
    row("data set", m.dataset.empty() ? "unknown" : m.dataset);
    ImGui::EndTable();
}

void browser_view(StudioState& state) {
    FileBrowser& b = state.browser;
    namespace fs = std::filesystem;
    ImGui::TextUnformatted("Folder");
    ImGui::SetNextItemWidth(-110);
    if (ImGui::InputText("##folder", &b.folder, ImGuiInputTextFlags_EnterReturnsTrue)) {
        list_folder(b);
    }
    ImGui::SameLine();
    if (ImGui::Button("List")) list_folder(b);
    ImGui::SameLine();
    browser_up_button(b, "Up");
    if (b.listed != b.folder && b.error.empty()) list_folder(b);
    show_error(b.error);
    ImGui::BeginChild("files", ImVec2(0, 260), true);
    browser_folder_rows(b);
    for (const auto& name : b.files) {
        const std::string path = (fs::path(b.folder) / name).string();
        if (ImGui::Selectable(name.c_str(), state.model.path_field == path,
                              ImGuiSelectableFlags_AllowDoubleClick)) {
            state.model.path_field = path;
            if (ImGui::IsMouseDoubleClicked(ImGuiMouseButton_Left)) {
                open_model(state, state.model, path);
            }
        }
    }
    if (b.folders.empty() && b.files.empty() && b.error.empty()) {
        ImGui::TextDisabled("no .safetensors files here");
    }
    ImGui::EndChild();
    ImGui::TextDisabled("click selects, double-click opens");
}

// The curves of the run that wrote this checkpoint, from the metrics.jsonl beside it.
void run_of_model(StudioState& state) {
    const RunCurves& run = state.model.run;
    if (run.empty()) {
        ImGui::TextDisabled("no metrics.jsonl beside this checkpoint: no training curves");
        return;
    }
    const CurveView& view = state.train.view;
    const auto& test = view.test_predicted ? run.test_pred : run.test_all;
    if (!test.empty()) {
        ImGui::Text("final test BPD %.4f (%s) at step %lld", test.back().value,
                    view.test_predicted ? "T-1 predicted sub-pixels" : "all T sub-pixels",
                    static_cast<long long>(test.back().step));
    } else {
        ImGui::TextDisabled("the run made no evaluation");
    }
    ImVec4 rect;
    training_chart("model_run", ImVec2(ImGui::GetContentRegionAvail().x, 200), nullptr, {run}, view,
                   &rect);
    record_region(state, "model_curves", rect);
    ImGui::TextDisabled("%s", run.path.c_str());
}

}  // namespace

void draw_model_panel(StudioState& state) {
    ModelSlot& slot = state.model;
    ImGui::TextUnformatted("Checkpoint");
    ImGui::SetNextItemWidth(-80);
    if (state.focus_checkpoint) {  // Ctrl+O
        ImGui::SetKeyboardFocusHere();
        state.focus_checkpoint = false;
    }
    const bool enter =
        ImGui::InputText("##path", &slot.path_field, ImGuiInputTextFlags_EnterReturnsTrue);
    if (ImGui::IsItemActive()) state.active_field = "checkpoint";
    ImGui::SameLine();
    if ((ImGui::Button("Open") || enter) && !slot.path_field.empty()) {
        open_model(state, slot, slot.path_field);
    }
    if (slot.opening) ImGui::Text("Opening %s ...", slot.path_field.c_str());
    show_error(slot.error);

    if (!state.notice.empty() && !slot.loaded()) {
        ImGui::Spacing();
        ImGui::TextWrapped("%s", state.notice.c_str());
        if (ImGui::Button("Train a model")) select_tab(state, Tab::Train);
        ImGui::Spacing();
    }

    draw_bundled_picker(state);
    ImGui::Spacing();
    if (ImGui::BeginTable("model_layout", 2, ImGuiTableFlags_Resizable)) {
        ImGui::TableNextColumn();
        browser_view(state);
        ImGui::Spacing();
        ImGui::TextUnformatted("Recent");
        for (size_t i = 0; i < state.recent.size(); ++i) {
            ImGui::PushID(static_cast<int>(i));
            if (ImGui::Selectable(state.recent[i].c_str())) {
                const std::string path = state.recent[i];
                open_model(state, slot, path);
            }
            ImGui::PopID();
        }
        if (state.recent.empty()) ImGui::TextDisabled("none yet");

        ImGui::TableNextColumn();
        if (slot.loaded()) {
            summary_table(slot.summary);
            run_of_model(state);
            if (ImGui::CollapsingHeader("Configuration (JSON)")) {
                ImGui::TextWrapped("%s", slot.summary.config_json.c_str());
            }
        } else {
            ImGui::TextDisabled("No model loaded.");
        }
        ImGui::EndTable();
    }
}

}  // namespace krause::ui
