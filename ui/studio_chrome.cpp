// The window around the panels: keyboard shortcuts, the View settings (text size, theme), the
// confirmation before a training run of hours, and the banner of a failed script step.
#include "ui/actions.h"
#include "ui/messages.h"
#include "ui/panels.h"

#include <GLFW/glfw3.h>
#include <imgui.h>

#include <cstdio>

namespace krause::ui {

namespace {

// Space: start the current tab's job, or stop it while it runs.
void toggle_current_job(StudioState& state) {
    std::string error;
    switch (state.tab) {
        case Tab::Sample:
            if (running(state.sample.job)) {
                state.sample.job->request_stop();
            } else if (!start_sample(state, &error)) {
                state.sample.message = error;
            }
            break;
        case Tab::Complete:
            if (running(state.complete.job)) {
                state.complete.job->request_stop();
            } else if (!start_complete(state, &error)) {
                state.complete.message = error;
            }
            break;
        case Tab::Compare:
            if (running(state.compare.sample_a) || running(state.compare.sample_b)) {
                if (state.compare.sample_a) state.compare.sample_a->request_stop();
                if (state.compare.sample_b) state.compare.sample_b->request_stop();
            } else if (!start_compare_samples(state, &error)) {
                state.compare.message = error;
            }
            break;
        case Tab::Train:
            if (running(state.train.job)) {
                state.train.job->request_stop();
            } else if (!start_train(state, &error)) {
                state.train.message = error;
            }
            break;
        case Tab::Model:
        case Tab::Inspect:
            break;
    }
}

void long_run_dialog(StudioState& state) {
    TrainState& t = state.train;
    const char* title = "Long training run";
    if (!t.long_run_warning.empty() && !ImGui::IsPopupOpen(title)) ImGui::OpenPopup(title);
    const ImGuiViewport* viewport = ImGui::GetMainViewport();
    ImGui::SetNextWindowPos(viewport->GetCenter(), ImGuiCond_Always, ImVec2(0.5f, 0.5f));
    ImGui::SetNextWindowSize(ImVec2(ImGui::GetFontSize() * 36, 0));
    if (!ImGui::BeginPopupModal(title, nullptr, ImGuiWindowFlags_AlwaysAutoResize)) return;
    ImGui::TextWrapped("%s", t.long_run_warning.c_str());
    ImGui::Spacing();
    std::string error;
    if (ImGui::Button("Start anyway")) {
        t.long_run_confirmed = true;
        if (!start_train(state, &error)) t.message = error;
        t.long_run_warning.clear();
        ImGui::CloseCurrentPopup();
    }
    ImGui::SameLine();
    if (ImGui::Button("Cancel") || ImGui::IsKeyPressed(GLFW_KEY_ESCAPE, false)) {
        t.long_run_warning.clear();
        ImGui::CloseCurrentPopup();
    }
    ImGui::EndPopup();
}

}  // namespace

void handle_shortcuts(StudioState& state) {
    const ImGuiIO& io = ImGui::GetIO();
    if (io.KeyCtrl && ImGui::IsKeyPressed(GLFW_KEY_Q, false)) state.quit_requested = true;
    if (io.KeyCtrl && ImGui::IsKeyPressed(GLFW_KEY_O, false)) {
        select_tab(state, Tab::Model);
        state.focus_checkpoint = true;
    }
    // Space belongs to a text field or button being used, and to an open dialog.
    if (!io.KeyCtrl && !io.WantTextInput && !ImGui::IsAnyItemActive() &&
        state.train.long_run_warning.empty() && ImGui::IsKeyPressed(GLFW_KEY_SPACE, false)) {
        toggle_current_job(state);
    }
}

void view_settings_button(StudioState& state) {
    if (ImGui::SmallButton("View")) ImGui::OpenPopup("view_settings");
    if (!ImGui::BeginPopup("view_settings")) return;
    ViewPrefs& v = state.view;
    bool changed = false;
    bool follow = v.font_scale <= 0;
    char monitor[64];
    std::snprintf(monitor, sizeof monitor, "Text size follows the monitor (%.2fx)",
                  state.content_scale);
    if (ImGui::Checkbox(monitor, &follow)) {
        v.font_scale = follow ? 0.0f : effective_scale(v, state.content_scale);
        changed = true;
    }
    ImGui::BeginDisabled(follow);
    float scale = effective_scale(v, state.content_scale);
    ImGui::SetNextItemWidth(ImGui::GetFontSize() * 12);
    // Applied on release: every change rebuilds the font.
    ImGui::SliderFloat("text size", &scale, kMinFontScale, kMaxFontScale, "%.2fx");
    if (ImGui::IsItemDeactivatedAfterEdit()) {
        v.font_scale = scale;
        changed = true;
    }
    ImGui::EndDisabled();
    int theme = v.light ? 1 : 0;
    bool theme_changed = ImGui::RadioButton("dark theme", &theme, 0);
    ImGui::SameLine();
    theme_changed |= ImGui::RadioButton("light theme", &theme, 1);
    if (theme_changed) {
        v.light = theme == 1;
        changed = true;
    }
    ImGui::Separator();
    ImGui::TextDisabled("Ctrl+O open a model   Ctrl+Q quit   Space start/stop the tab's job");
    if (changed) {
        state.view_changed = true;
        save_view_prefs(v);
    }
    ImGui::EndPopup();
}

void draw_overlays(StudioState& state) {
    long_run_dialog(state);
    if (state.script_error.empty()) return;
    // A failed script step ends the run; its screenshot must say why, in the studio's words (the
    // step's message on stderr keeps the engine's).
    const ImGuiViewport* viewport = ImGui::GetMainViewport();
    ImGui::SetNextWindowPos(ImVec2(viewport->WorkPos.x + viewport->WorkSize.x * 0.5f,
                                   viewport->WorkPos.y + viewport->WorkSize.y - 60),
                            ImGuiCond_Always, ImVec2(0.5f, 1.0f));
    ImGui::SetNextWindowSize(ImVec2(viewport->WorkSize.x * 0.8f, 0));
    ImGui::PushStyleColor(ImGuiCol_WindowBg, ImVec4(0.35f, 0.05f, 0.05f, 0.95f));
    ImGui::PushStyleColor(ImGuiCol_TitleBg, ImVec4(0.55f, 0.08f, 0.08f, 1.0f));
    ImGui::PushStyleColor(ImGuiCol_TitleBgActive, ImVec4(0.55f, 0.08f, 0.08f, 1.0f));
    ImGui::PushStyleColor(ImGuiCol_Text, ImVec4(1, 1, 1, 1));
    ImGui::Begin("Script step failed", nullptr,
                 ImGuiWindowFlags_NoCollapse | ImGuiWindowFlags_NoMove |
                     ImGuiWindowFlags_NoResize | ImGuiWindowFlags_AlwaysAutoResize |
                     ImGuiWindowFlags_NoSavedSettings);
    ImGui::TextWrapped("%s", for_studio(state.script_error).c_str());
    ImGui::End();
    ImGui::PopStyleColor(4);
}

}  // namespace krause::ui
