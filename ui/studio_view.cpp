// The main window: a line about the model, one tab per panel, and a status bar with the jobs and
// the frame time; plus the widgets the panels share.
#include "ui/actions.h"
#include "ui/data_folder.h"
#include "ui/messages.h"
#include "ui/panels.h"
#include "ui/recent_files.h"

#include <imgui.h>
#include <imgui_stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

namespace krause::ui {

namespace {

const ImVec4 kErrorColor(1.0f, 0.45f, 0.4f, 1.0f);
const ImVec4 kErrorColorLight(0.75f, 0.05f, 0.0f, 1.0f);

struct TabEntry {
    Tab tab;
    const char* label;
    void (*draw)(StudioState&);
};
constexpr TabEntry kTabs[] = {
    {Tab::Model, "Model", draw_model_panel},          {Tab::Sample, "Sample", draw_sample_panel},
    {Tab::Complete, "Complete", draw_complete_panel}, {Tab::Inspect, "Inspect", draw_inspect_panel},
    {Tab::Compare, "Compare", draw_compare_panel},    {Tab::Train, "Train", draw_train_panel},
    {Tab::Dynamics, "Dynamics", draw_dynamics_panel},
};

void status_bar(StudioState& state) {
    ImGui::Separator();
    view_settings_button(state);
    ImGui::SameLine(0, 16);
    // The mean of the last frames, leaving out those that wrote a screenshot.
    const FrameTimes& f = state.frames;
    float recent_ms = 0;
    int counted = 0;
    for (size_t i = f.frame_ms.size(); i-- > 0 && counted < 60;) {
        if (f.excluded[i]) continue;
        recent_ms += f.frame_ms[i];
        ++counted;
    }
    if (counted > 0) recent_ms /= counted;
    ImGui::Text("frame %.1f ms", recent_ms);
    ImGui::SameLine(0, 24);
    ImGui::Text("sample: %s  complete: %s  inspect: %s  train: %s%s",
                job_state(state.sample.job).c_str(), job_state(state.complete.job).c_str(),
                job_state(state.inspect.job).c_str(), job_state(state.train.job).c_str(),
                state.train.job && state.train.job->paused() ? " (paused)" : "");
    if (state.retired.size() > 0) {
        ImGui::SameLine(0, 24);
        ImGui::TextDisabled("%zu stopping", state.retired.size());
    }
}

}  // namespace

void draw_studio(StudioState& state) {
    state.regions.clear();
    state.active_field.clear();
    handle_shortcuts(state);
    const ImGuiViewport* viewport = ImGui::GetMainViewport();
    ImGui::SetNextWindowPos(viewport->WorkPos);
    ImGui::SetNextWindowSize(viewport->WorkSize);
    // No background: the window covers the screen, whose clear colour is the theme's window
    // colour (studio_app.cpp); a software renderer would otherwise shade every pixel twice.
    const ImGuiWindowFlags flags = ImGuiWindowFlags_NoDecoration | ImGuiWindowFlags_NoMove |
                                   ImGuiWindowFlags_NoSavedSettings |
                                   ImGuiWindowFlags_NoBringToFrontOnFocus |
                                   ImGuiWindowFlags_NoBackground;
    ImGui::Begin("Krause Studio", nullptr, flags);
    if (state.model.loaded()) {
        model_line(state.model.summary);
    } else if (state.model.opening) {
        ImGui::Text("Opening %s ...", state.model.path_field.c_str());
    } else if (!state.model.error.empty() && state.tab != Tab::Model) {
        // A model that failed to open (a bad checkpoint named at start-up, say) is reported on
        // whichever tab the user is on; the Model tab shows it beside the path.
        if (ImGui::SmallButton("Choose another model")) select_tab(state, Tab::Model);
        ImGui::SameLine();
        show_error("No model loaded: " + state.model.error);
    } else {
        ImGui::TextDisabled("No model loaded");
    }

    const float status_h = ImGui::GetFrameHeightWithSpacing() + 4;
    if (ImGui::BeginTabBar("tabs")) {
        for (const TabEntry& entry : kTabs) {
            const bool request = state.tab_request_frames > 0 && state.tab == entry.tab;
            if (ImGui::BeginTabItem(entry.label, nullptr,
                                    request ? ImGuiTabItemFlags_SetSelected : 0)) {
                if (state.tab_request_frames == 0) state.tab = entry.tab;
                ImGui::BeginChild("panel", ImVec2(0, -status_h), false);
                entry.draw(state);
                ImGui::EndChild();
                ImGui::EndTabItem();
            }
        }
        ImGui::EndTabBar();
    }
    if (state.tab_request_frames > 0) --state.tab_request_frames;
    status_bar(state);
    ImGui::End();
    draw_data_window(state);
    draw_overlays(state);
}

void show_error(const std::string& message) {
    if (message.empty()) return;
    ImGui::PushStyleColor(ImGuiCol_Text, light_theme_active() ? kErrorColorLight : kErrorColor);
    ImGui::TextWrapped("%s", for_studio(message).c_str());
    ImGui::PopStyleColor();
}

void browser_up_button(FileBrowser& browser, const char* label) {
    if (ImGui::Button(label)) {
        browser.folder =
            std::filesystem::path(browser.folder).lexically_normal().parent_path().string();
        list_folder(browser);
    }
}

bool browser_folder_rows(FileBrowser& browser) {
    for (const auto& name : browser.folders) {
        if (ImGui::Selectable(("[dir] " + name).c_str(), false,
                              ImGuiSelectableFlags_AllowDoubleClick) &&
            ImGui::IsMouseDoubleClicked(ImGuiMouseButton_Left)) {
            browser.folder = (std::filesystem::path(browser.folder) / name).string();
            list_folder(browser);
            return true;
        }
    }
    return false;
}

void png_target_fields(std::string* path, int* scale, float path_width) {
    ImGui::SetNextItemWidth(path_width);
    ImGui::InputText("##png", path);
    ImGui::SameLine();
    ImGui::SetNextItemWidth(80);
    ImGui::InputInt("x", scale);
    *scale = std::clamp(*scale, 1, 64);
}

void save_png_button(StudioState& state, const char* what, const std::string& path, int scale,
                     std::string* message) {
    if (!ImGui::Button("Save PNG")) return;
    std::string error;
    *message = export_png(state, what, scale, path, &error) ? "saved " + path : error;
}

bool choice_combo(const char* label, std::string* value, const std::vector<std::string>& names) {
    int index = 0;
    for (size_t i = 0; i < names.size(); ++i) {
        if (*value == names[i]) index = static_cast<int>(i);
    }
    const auto name_of = [](void* data, int i, const char** out) {
        *out =
            (*static_cast<const std::vector<std::string>*>(data))[static_cast<size_t>(i)].c_str();
        return true;
    };
    auto* names_data = const_cast<std::vector<std::string>*>(&names);
    if (!ImGui::Combo(label, &index, name_of, names_data, static_cast<int>(names.size()))) {
        return false;
    }
    *value = names[static_cast<size_t>(index)];
    return true;
}

std::string format_duration(double seconds) {
    if (!(seconds > 0)) return "-";
    char out[32];
    const long long s = static_cast<long long>(std::llround(seconds));
    if (s >= 3600) {
        std::snprintf(out, sizeof out, "%lldh%02lldm", s / 3600, (s / 60) % 60);
    } else if (s >= 60) {
        std::snprintf(out, sizeof out, "%lldm%02llds", s / 60, s % 60);
    } else {
        std::snprintf(out, sizeof out, "%.1fs", seconds);
    }
    return out;
}

std::string format_count(double value) {
    char out[32];
    if (value >= 1e9) {
        std::snprintf(out, sizeof out, "%.2fG", value / 1e9);
    } else if (value >= 1e6) {
        std::snprintf(out, sizeof out, "%.2fM", value / 1e6);
    } else if (value >= 1e3) {
        std::snprintf(out, sizeof out, "%.1fk", value / 1e3);
    } else {
        std::snprintf(out, sizeof out, "%.0f", value);
    }
    return out;
}

std::string format_rate(double value) {
    if (value >= 100) return format_count(value);
    char out[32];
    if (value >= 10) {
        std::snprintf(out, sizeof out, "%.1f", value);
    } else if (value >= 0.01 || value == 0) {
        std::snprintf(out, sizeof out, "%.2f", value);
    } else {
        std::snprintf(out, sizeof out, "%.1e", value);
    }
    return out;
}

void show_progress(const Progress& progress, const std::string& job_state) {
    const float fraction =
        progress.total > 0 ? static_cast<float>(progress.done) / static_cast<float>(progress.total)
                           : 0.0f;
    char overlay[160];
    std::snprintf(overlay, sizeof overlay, "%lld / %lld %s   %s %s/s   ETA %s   (%s)",
                  static_cast<long long>(progress.done), static_cast<long long>(progress.total),
                  progress.unit.c_str(), format_rate(progress.rate).c_str(), progress.unit.c_str(),
                  format_duration(progress.eta_s).c_str(), job_state.c_str());
    ImGui::ProgressBar(fraction, ImVec2(-1, 0), overlay);
}

void model_line(const ModelSummary& m) {
    // Window and top-K are Krause attention's own; the other kinds have neither.
    char knobs[64] = "";
    if (m.attention == "krause") {
        std::snprintf(knobs, sizeof knobs, ", window %lld, top-K %lld",
                      static_cast<long long>(m.window), static_cast<long long>(m.top_k));
    }
    ImGui::Text(
        "%s  |  %s attention, %lld layers x %lld heads, d %lld%s  |  "
        "%lldx%lldx%lld  |  %s parameters  |  step %lld%s%s",
        m.path.c_str(), m.attention.c_str(), static_cast<long long>(m.n_layers),
        static_cast<long long>(m.n_heads), static_cast<long long>(m.d_model), knobs,
        static_cast<long long>(m.image_height), static_cast<long long>(m.image_width),
        static_cast<long long>(m.image_channels), format_count(m.parameters).c_str(),
        static_cast<long long>(m.step), m.dataset.empty() ? "" : "  |  ", m.dataset.c_str());
}

void record_region(StudioState& state, const std::string& name, const ImVec4& rect) {
    state.regions[name] = rect;
}

}  // namespace krause::ui
