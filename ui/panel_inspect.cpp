// Inspect panel: where one pixel looks. A heat map per layer (rows) and head (columns) of its
// attention weights over the image, one map enlarged with every key readable, and the per-layer
// measures of KRAUSE.md at this pixel and over the whole image.
#include "ui/actions.h"
#include "ui/panels.h"

#include <imgui.h>

#include <algorithm>
#include <cmath>

namespace krause::ui {

namespace {

constexpr float kSideWidth = 300.0f;
constexpr float kChartWidth = 340.0f;

void colour_legend(float width) {
    const ImVec2 p = ImGui::GetCursorScreenPos();
    ImDrawList* draw = ImGui::GetWindowDrawList();
    constexpr int kSteps = 32;
    const float step = width / kSteps;
    for (int i = 0; i < kSteps; ++i) {
        draw->AddRectFilled(ImVec2(p.x + i * step, p.y), ImVec2(p.x + (i + 1) * step + 1, p.y + 10),
                            heat_color(static_cast<float>(i) / (kSteps - 1)));
    }
    ImGui::Dummy(ImVec2(width, 12));
    ImGui::TextDisabled("0  ...  largest weight of the map");
    ImGui::TextDisabled("green outline: causal window; cyan: the pixel");
    ImGui::TextDisabled("blue: in the window, dropped by top-K");
}

void target_view(StudioState& state) {
    InspectState& in = state.inspect;
    const ProbeTarget& t = in.target;
    ImGui::Text("%s image %d, row %d, col %d", t.source.c_str(), t.image, t.row, t.col);
    ImGui::Text("sub-pixel %lld (query position %lld)", static_cast<long long>(t.sub_pixel),
                static_cast<long long>(t.position()));
    const float scale = std::max(1.0f, std::floor(kSideWidth * 0.75f / t.pixels.width));
    PixelRef clicked;
    ImVec4 rect;
    if (in.source.draw("source", scale, 1, &clicked, PixelRef{0, t.row, t.col}, &rect)) {
        std::string error;
        if (!inspect_pixel(state, "inspect", 0, clicked.row, clicked.col, in.channel, &error)) {
            in.message = error;
        }
    }
    record_region(state, "inspect_source", rect);
    if (t.pixels.channels == 3) {
        bool changed = false;
        changed |= ImGui::RadioButton("R", &in.channel, 0);
        ImGui::SameLine();
        changed |= ImGui::RadioButton("G", &in.channel, 1);
        ImGui::SameLine();
        changed |= ImGui::RadioButton("B", &in.channel, 2);
        ImGui::SameLine();
        ImGui::TextDisabled("channel");
        std::string error;
        if (changed && !inspect_pixel(state, "inspect", 0, t.row, t.col, in.channel, &error)) {
            in.message = error;
        }
    }
}

void style_controls(InspectState& in) {
    ImGui::SetNextItemWidth(140);
    ImGui::SliderFloat("gamma", &in.style.gamma, 0.1f, 1.0f, "%.2f");
    ImGui::Checkbox("window", &in.style.show_window);
    ImGui::SameLine();
    ImGui::Checkbox("kept keys", &in.style.show_selected);
    ImGui::SameLine();
    ImGui::Checkbox("image", &in.style.show_image);
    ImGui::Checkbox("show Inspect on click", &in.jump_on_click);
}

void enlarged_map(StudioState& state) {
    InspectState& in = state.inspect;
    const AttentionMaps& maps = in.maps;
    in.layer = std::clamp(in.layer, 0, maps.layers() - 1);
    in.head = std::clamp(in.head, 0, maps.heads() - 1);
    ImGui::SetNextItemWidth(90);
    ImGui::InputInt("layer", &in.layer);
    ImGui::SameLine();
    ImGui::SetNextItemWidth(90);
    ImGui::InputInt("head", &in.head);
    in.layer = std::clamp(in.layer, 0, maps.layers() - 1);
    in.head = std::clamp(in.head, 0, maps.heads() - 1);
    const MapInfo& info = maps.info(in.layer, in.head);
    ImGui::Text("largest %.4f  sink %.4f  kept %d", info.max_weight, info.sink, info.selected);
    const float scale = std::max(1.0f, std::floor(kSideWidth / in.target.pixels.width));
    ImVec4 rect;
    maps.draw_map("enlarged", in.layer, in.head, scale, true, &rect);
    record_region(state, "inspect_map", rect);
}

}  // namespace

void draw_measure_charts(const std::vector<MeasureSeries>& series, float width,
                         float chart_height) {
    struct Measure {
        const char* title;
        double LayerMeasures::*field;
    };
    static const Measure kMeasures[] = {
        {"sink mass (weight on position 0)", &LayerMeasures::sink_mass},
        {"oldest key of the window", &LayerMeasures::oldest_key},
        {"largest weight", &LayerMeasures::max_weight},
        {"entropy (nats)", &LayerMeasures::entropy},
        {"keys holding 90%", &LayerMeasures::keys_for_90},
    };
    for (const Measure& m : kMeasures) {
        std::vector<PlotSeries> lines;
        for (const MeasureSeries& s : series) {
            if (!s.measures || s.measures->empty()) continue;
            PlotSeries line;
            line.label = s.label;
            line.color = s.color;
            line.markers = true;
            for (size_t l = 0; l < s.measures->size(); ++l) {
                line.x.push_back(static_cast<double>(l));
                line.y.push_back((*s.measures)[l].*m.field);
            }
            lines.push_back(std::move(line));
        }
        PlotOptions options;
        options.title = m.title;
        options.x_label = "layer";
        options.integer_x = true;
        options.y_from_zero = true;
        line_chart(m.title, ImVec2(width, chart_height), lines, options);
    }
}

void draw_inspect_panel(StudioState& state) {
    InspectState& in = state.inspect;
    show_error(in.message);
    if (!in.has_target) {
        ImGui::TextWrapped(
            "Click a pixel of any image (Sample, Complete, the data set or the "
            "training preview) to see which earlier pixels it attends to.");
        return;
    }
    if (!ImGui::BeginTable("inspect_layout", 3, ImGuiTableFlags_Resizable)) return;
    ImGui::TableSetupColumn("target", ImGuiTableColumnFlags_WidthFixed, kSideWidth + 10);
    ImGui::TableSetupColumn("maps", ImGuiTableColumnFlags_WidthStretch);
    ImGui::TableSetupColumn("charts", ImGuiTableColumnFlags_WidthFixed, kChartWidth + 10);

    ImGui::TableNextColumn();
    target_view(state);
    ImGui::Separator();
    style_controls(in);
    if (in.maps.ready()) {
        ImGui::Separator();
        enlarged_map(state);
        colour_legend(kSideWidth * 0.8f);
    }

    ImGui::TableNextColumn();
    const std::string job = job_state(in.job);
    if (!in.maps.ready()) {
        ImGui::Text("probing ... (%s)", job.c_str());
    } else {
        const ProbeResult* r = in.maps.result();
        ImGui::Text("%lld layers x %lld heads, window %lld. Click a map to enlarge it.",
                    static_cast<long long>(r->n_layers), static_cast<long long>(r->n_heads),
                    static_cast<long long>(r->window));
        ImGui::BeginChild("maps", ImVec2(0, 0), false, ImGuiWindowFlags_HorizontalScrollbar);
        const float avail = ImGui::GetContentRegionAvail().x - ImGui::CalcTextSize("L00 ").x;
        const int heads = std::max(1, in.maps.heads());
        const float scale = std::max(
            1.0f, std::floor((avail - heads * kMapGap) / (heads * in.target.pixels.width)));
        ImVec4 rect;
        in.maps.draw_grid("grid", std::min(scale, 8.0f), &in.layer, &in.head, &rect);
        record_region(state, "inspect_maps", rect);
        ImGui::EndChild();
    }

    ImGui::TableNextColumn();
    const ProbeResult* r = in.maps.result();
    if (r) {
        ImGui::BeginChild("charts", ImVec2(0, 0), false);
        if (in.measures && !in.measures->done()) {
            ImGui::TextDisabled("averaging over the whole image ...");
        } else if (!in.measures) {
            std::string error;
            if (ImGui::Button("Average over the whole image")) {
                if (!start_image_averages(state, &error)) in.message = error;
            }
        } else {
            ImGui::TextDisabled("per layer, mean over heads");
        }
        draw_measure_charts({{"this pixel", &r->at_queries, kColorPixel},
                             {"whole image", &in.over_image, kColorImage}},
                            kChartWidth, 150.0f);
        ImGui::EndChild();
    }
    ImGui::EndTable();
}

}  // namespace krause::ui
