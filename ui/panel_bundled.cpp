// The Model tab's picker of bundled models: what each is, how well it scores, and whether it
// samples quickly enough on a CPU; a click opens one.
#include "ui/actions.h"
#include "ui/panels.h"

#include <imgui.h>

#include <cstdio>

namespace krause::ui {

namespace {

// "1.2s" (measured) or "~12s" (estimated) and whether a 4x4 grid takes long on a CPU of 2
// threads.
std::string grid_time(const BundledModel& m) {
    if (!(m.grid_seconds > 0)) return "unknown";
    return (m.grid_measured ? "" : "~") + format_duration(m.grid_seconds) +
           (m.grid_seconds > kSlowGridSeconds ? " (slow on a CPU)" : " (fast)");
}

}  // namespace

void draw_bundled_picker(StudioState& state) {
    ImGui::TextUnformatted("Bundled models");
    show_error(state.bundled_error);
    if (state.bundled.empty()) {
        ImGui::TextDisabled("none ship with this build");
        return;
    }
    const ImGuiTableFlags flags =
        ImGuiTableFlags_RowBg | ImGuiTableFlags_BordersInnerV | ImGuiTableFlags_SizingFixedFit;
    if (!ImGui::BeginTable("bundled", 6, flags)) return;
    ImGui::TableSetupColumn("name");
    ImGui::TableSetupColumn("data");
    ImGui::TableSetupColumn("attention");
    ImGui::TableSetupColumn("size");
    ImGui::TableSetupColumn("test bits/dim (T / T-1)");
    ImGui::TableSetupColumn("4x4 grid on 2 CPU cores");
    ImGui::TableHeadersRow();
    const BundledModel* open_bundled = bundled_in(state, state.model);
    for (const BundledModel& m : state.bundled) {
        ImGui::TableNextRow();
        ImGui::TableNextColumn();
        const bool open = &m == open_bundled;
        if (ImGui::Selectable(m.name.c_str(), open, ImGuiSelectableFlags_SpanAllColumns)) {
            open_model(state, state.model, m.path);
        }
        if (ImGui::IsItemHovered() && !m.description.empty()) {
            ImGui::SetTooltip("%s", m.description.c_str());
        }
        ImGui::TableNextColumn();
        ImGui::TextUnformatted(m.data.c_str());
        ImGui::TableNextColumn();
        ImGui::TextUnformatted(m.attention.c_str());
        ImGui::TableNextColumn();
        ImGui::Text("%s, %s", m.preset.c_str(),
                    format_count(static_cast<double>(m.parameters)).c_str());
        ImGui::TableNextColumn();
        ImGui::Text("%.4f / %.4f", m.bpd_all, m.bpd_predicted);
        ImGui::TableNextColumn();
        ImGui::TextUnformatted(grid_time(m).c_str());
    }
    ImGui::EndTable();
    const ImVec2 a = ImGui::GetItemRectMin(), b = ImGui::GetItemRectMax();
    record_region(state, "bundled_table", ImVec4(a.x, a.y, b.x - a.x, b.y - a.y));
    ImGui::TextDisabled(
        "click opens; grid times measured on an idle 2-core CPU (~: estimated from parameters x "
        "sub-pixels)");
}

}  // namespace krause::ui
