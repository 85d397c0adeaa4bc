// The Data window: the one data folder of the studio, the folder each kind is read from, a folder
// browser to choose another, and a Download button per kind with progress and Stop.
#include "ui/data_folder.h"
#include "ui/panels.h"
#include "ui/recent_files.h"

#include <imgui.h>
#include <imgui_stdlib.h>

namespace krause::ui {

namespace {

// Folders only: the browser is the Model panel's, its file list is left out here.
void folder_browser(StudioState& state) {
    FileBrowser& b = state.folders.browser;
    ImGui::SetNextItemWidth(-230);
    if (ImGui::InputText("##datafolder", &b.folder, ImGuiInputTextFlags_EnterReturnsTrue)) {
        list_folder(b);
    }
    if (ImGui::IsItemActive()) state.active_field = "data-folder";
    ImGui::SameLine();
    browser_up_button(b, "Up##data");
    ImGui::SameLine();
    if (ImGui::Button("Use this folder")) {
        std::string error;
        if (!set_data_folder(state, b.folder, &error)) state.folders.error = error;
    }
    if (b.listed != b.folder && b.error.empty()) list_folder(b);
    show_error(b.error);
    ImGui::BeginChild("datafolders", ImVec2(0, 150), true);
    browser_folder_rows(b);
    if (b.folders.empty() && b.error.empty()) ImGui::TextDisabled("no sub-folders here");
    ImGui::EndChild();
}

void kind_rows(StudioState& state) {
    DataFolderState& f = state.folders;
    const bool fetching = f.fetch && !f.fetch->done();
    if (!ImGui::BeginTable("kinds", 3, ImGuiTableFlags_BordersInnerH)) return;
    ImGui::TableSetupColumn("kind", ImGuiTableColumnFlags_WidthFixed, 110);
    ImGui::TableSetupColumn("folder", ImGuiTableColumnFlags_WidthStretch);
    ImGui::TableSetupColumn("action", ImGuiTableColumnFlags_WidthFixed, 90);
    for (const auto& kind : data_kind_names()) {
        ImGui::TableNextRow();
        ImGui::TableNextColumn();
        ImGui::TextUnformatted(kind.c_str());
        ImGui::TableNextColumn();
        const std::string dir = data_dir_for(state, kind);
        if (!dir.empty()) {
            ImGui::TextWrapped("%s", dir.c_str());
        } else {
            ImGui::TextDisabled("not found: looked in");
            for (const auto& where : f.found[kind].looked_in) {
                ImGui::TextDisabled("  %s", where.c_str());
            }
        }
        ImGui::TableNextColumn();
        ImGui::PushID(kind.c_str());
        ImGui::BeginDisabled(fetching);
        if (ImGui::Button("Download")) {
            std::string error;
            if (!start_data_fetch(state, kind, &error)) f.error = error;
        }
        ImGui::EndDisabled();
        ImGui::PopID();
    }
    ImGui::EndTable();
}

void fetch_progress(StudioState& state) {
    DataFolderState& f = state.folders;
    if (!f.fetch && !f.fetch_shown) return;
    const bool fetching = f.fetch && !f.fetch->done();
    ImGui::Text("Download of %s%s", f.fetch_kind.c_str(), fetching ? " ..." : "");
    if (f.fetch_shown) {
        if (!f.fetch_shown->file.empty()) ImGui::TextDisabled("%s", f.fetch_shown->file.c_str());
        show_progress(f.fetch_shown->progress,
                      fetching ? job_state(f.fetch) : (f.error.empty() ? "ended" : "failed"));
        if (!f.fetch_shown->lines.empty()) {
            ImGui::TextDisabled("%s", f.fetch_shown->lines.back().c_str());
        }
    }
    if (fetching && ImGui::Button("Stop download")) f.fetch->request_stop();
}

}  // namespace

void draw_data_window(StudioState& state) {
    DataFolderState& f = state.folders;
    if (!f.window_open) return;
    const ImGuiViewport* viewport = ImGui::GetMainViewport();
    ImGui::SetNextWindowPos(ImVec2(viewport->WorkPos.x + 60, viewport->WorkPos.y + 60),
                            ImGuiCond_Appearing);
    ImGui::SetNextWindowSize(ImVec2(760, 560), ImGuiCond_Appearing);
    ImGui::SetNextWindowBgAlpha(1.0f);  // the panel below would show through the text
    if (!ImGui::Begin("Data folder", &f.window_open, ImGuiWindowFlags_NoSavedSettings)) {
        ImGui::End();
        return;
    }
    const ImVec2 pos = ImGui::GetWindowPos(), size = ImGui::GetWindowSize();
    record_region(state, "data_window", ImVec4(pos.x, pos.y, size.x, size.y));
    ImGui::TextUnformatted(
        "The data folder of the studio (holds mnist/, fashion-mnist/, cifar-10/):");
    ImGui::TextWrapped(
        "%s", f.root.empty() ? "none chosen: the folders below are searched" : f.root.c_str());
    if (!f.root.empty()) {
        ImGui::SameLine();
        if (ImGui::SmallButton("Forget")) {
            f.root.clear();
            try {
                remember_data_dir("");
            } catch (const std::exception& e) {
                f.error = e.what();
            }
            refresh_data_folders(state);
        }
    }
    ImGui::Separator();
    kind_rows(state);
    if (ImGui::Button("Look again")) refresh_data_folders(state);
    if (!f.base_url.empty()) {
        ImGui::SameLine();
        ImGui::TextDisabled("downloads from %s", f.base_url.c_str());
    }
    fetch_progress(state);
    if (!f.message.empty()) ImGui::TextWrapped("%s", f.message.c_str());
    show_error(f.error);
    ImGui::Separator();
    ImGui::TextUnformatted("Choose another folder:");
    folder_browser(state);
    ImGui::End();
}

void data_folder_line(StudioState& state, const std::string& kind) {
    const std::string dir = data_dir_for(state, kind);
    if (ImGui::Button("Data folder...")) state.folders.window_open = true;
    ImGui::SameLine();
    if (!dir.empty()) {
        ImGui::TextDisabled("%s", dir.c_str());
    } else {
        show_error(data_missing_message(state, kind));
    }
}

}  // namespace krause::ui
