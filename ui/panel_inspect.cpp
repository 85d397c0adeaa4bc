// Inspect panel: where one pixel looks. A heat map per layer (rows) and head (columns) of its
// attention weights over the image, one map enlarged with every key readable, and the per-layer
// measures of KRAUSE.md at this pixel and over the whole image.
#include "ui/actions.h"
#include "ui/panels.h"

#include <imgui.h>
#include <imgui_stdlib.h>

#include <algorithm>
#include <cmath>

namespace krause::ui {

namespace {

constexpr float kSideWidth = 300.0f;
constexpr float kChartWidth = 340.0f;

void colour_legend(const InspectState& in, float width) {
    const ImVec2 p = ImGui::GetCursorScreenPos();
    ImDrawList* draw = ImGui::GetWindowDrawList();
    constexpr int kSteps = 32;
    const float step = width / kSteps;
    for (int i = 0; i < kSteps; ++i) {
        draw->AddRectFilled(ImVec2(p.x + i * step, p.y), ImVec2(p.x + (i + 1) * step + 1, p.y + 10),
                            heat_color(static_cast<float>(i) / (kSteps - 1)));
    }
    ImGui::Dummy(ImVec2(width, 12));
    const MapScale scale = in.style.scale;
    ImGui::TextDisabled("0  ...  %s", scale == MapScale::PerMap   ? "largest weight of the map"
                                      : scale == MapScale::Shared ? "largest weight of the grid"
                                                                  : "weight 1");
    ImGui::TextDisabled("green outline: causal window; cyan: the pixel");
    ImGui::TextDisabled("blue: in the window, dropped by top-K");
}

void target_view(StudioState& state) {
    InspectState& in = state.inspect;
    const ProbeTarget& t = in.target;
    // In the user's words: which pixel (and colour), and what the model saw before predicting it.
    constexpr const char* kChannels[] = {"red", "green", "blue"};
    if (t.pixels.channels == 3) {
        ImGui::Text("The %s value at row %d, column %d", kChannels[std::clamp(t.channel, 0, 2)],
                    t.row, t.col);
    } else {
        ImGui::Text("Pixel at row %d, column %d", t.row, t.col);
    }
    ImGui::TextDisabled("of %s image %d,", t.source.c_str(), t.image);
    ImGui::TextDisabled("predicted from the %lld values before it",
                        static_cast<long long>(t.sub_pixel));
    if (ImGui::IsItemHovered()) {
        ImGui::SetTooltip(
            "sub-pixel %lld in raster order (rows, columns%s); the network's query "
            "position %lld",
            static_cast<long long>(t.sub_pixel), t.pixels.channels == 3 ? ", then R, G, B" : "",
            static_cast<long long>(t.position()));
    }
    ImGui::TextDisabled("arrow keys move the pixel");
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
    int scale = static_cast<int>(in.style.scale);
    ImGui::TextUnformatted("colours:");
    ImGui::SameLine();
    ImGui::RadioButton("per map", &scale, static_cast<int>(MapScale::PerMap));
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("each map up to its own largest weight");
    ImGui::SameLine();
    ImGui::RadioButton("shared", &scale, static_cast<int>(MapScale::Shared));
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("every map up to the grid's largest weight");
    ImGui::SameLine();
    ImGui::RadioButton("0..1", &scale, static_cast<int>(MapScale::Absolute));
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("absolute: the brightest colour is weight 1");
    in.style.scale = static_cast<MapScale>(scale);
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

// The model's 256-way prediction of the inspected sub-pixel, with the true value marked.
void next_value_chart(StudioState& state, float width) {
    const InspectState& in = state.inspect;
    if (in.next_probs.size() != 256) return;
    const int truth = in.target.pixels.tokens[static_cast<size_t>(in.target.sub_pixel)];
    const auto top = std::max_element(in.next_probs.begin(), in.next_probs.end());
    const int best = static_cast<int>(top - in.next_probs.begin());
    ImGui::TextUnformatted("the model's prediction of this value");
    ImGui::Text("true %d: p %.3f   most likely %d: p %.3f", truth, in.next_probs[truth], best,
                *top);
    const float height = 90.0f;
    const ImVec2 origin = ImGui::GetCursorScreenPos();
    ImGui::InvisibleButton("next_value", ImVec2(width, height + 16));
    ImDrawList* draw = ImGui::GetWindowDrawList();
    const ImVec2 p0 = origin, p1(origin.x + width, origin.y + height);
    draw->AddRectFilled(p0, p1, IM_COL32(22, 22, 28, 255));
    // Bars inside a small margin, so that values 0 and 255 (common in MNIST) do not sit on the
    // frame; the true value is marked above the bars as well, for when its bar is tiny.
    const float left = p0.x + 3, bar = (width - 6) / 256.0f;
    const float y_max = std::max(*top, 1e-6f);
    for (int v = 0; v < 256; ++v) {
        const float h =
            std::max(in.next_probs[v] > 0 ? 1.0f : 0.0f, in.next_probs[v] / y_max * (height - 12));
        draw->AddRectFilled(ImVec2(left + v * bar, p1.y - h),
                            ImVec2(left + v * bar + std::max(bar, 1.5f), p1.y),
                            v == truth ? kColorSecond : kColorImage);
    }
    const float tx = left + (truth + 0.5f) * bar;
    draw->AddLine(ImVec2(tx, p0.y + 8), ImVec2(tx, p1.y), kColorSecond, 1.0f);
    draw->AddTriangleFilled(ImVec2(tx - 4, p0.y + 1), ImVec2(tx + 4, p0.y + 1),
                            ImVec2(tx, p0.y + 8), kColorSecond);
    draw->AddRect(p0, p1, IM_COL32(90, 90, 100, 255));
    const ImU32 text = ImGui::GetColorU32(ImGuiCol_Text);
    draw->AddText(ImVec2(p0.x, p1.y + 1), text, "0");
    draw->AddText(ImVec2(p1.x - ImGui::CalcTextSize("255").x, p1.y + 1), text, "255");
    const char* note = "green: the true value";
    draw->AddText(ImVec2((p0.x + p1.x - ImGui::CalcTextSize(note).x) / 2, p1.y + 1), text, note);
    if (ImGui::IsItemHovered()) {
        const int v =
            std::clamp(static_cast<int>((ImGui::GetIO().MousePos.x - left) / bar), 0, 255);
        ImGui::SetTooltip("value %d: p %.4f%s", v, in.next_probs[v], v == truth ? " (true)" : "");
    }
    record_region(state, "inspect_next", ImVec4(p0.x, p0.y, width, height));
}

void export_controls(StudioState& state) {
    InspectState& in = state.inspect;
    png_target_fields(&in.png_path, &in.png_scale, 170);
    std::string error;
    if (ImGui::Button("Save grid PNG")) {
        if (export_png(state, "inspect-grid", in.png_scale, in.png_path, &error)) {
            in.message.clear();
        } else {
            in.message = error;
        }
    }
    ImGui::SameLine();
    if (ImGui::Button("Save enlarged map PNG")) {
        if (export_png(state, "inspect-map", in.png_scale, in.png_path, &error)) {
            in.message.clear();
        } else {
            in.message = error;
        }
    }
    if (!state.last_export.path.empty()) {
        ImGui::TextDisabled("saved %s (%dx%d)", state.last_export.path.c_str(),
                            state.last_export.width, state.last_export.height);
    }
}

void arrow_keys(StudioState& state) {
    if (ImGui::GetIO().WantTextInput) return;
    int d_row = 0, d_col = 0;
    if (ImGui::IsKeyPressed(ImGui::GetKeyIndex(ImGuiKey_LeftArrow))) d_col = -1;
    if (ImGui::IsKeyPressed(ImGui::GetKeyIndex(ImGuiKey_RightArrow))) d_col = 1;
    if (ImGui::IsKeyPressed(ImGui::GetKeyIndex(ImGuiKey_UpArrow))) d_row = -1;
    if (ImGui::IsKeyPressed(ImGui::GetKeyIndex(ImGuiKey_DownArrow))) d_row = 1;
    if (d_row == 0 && d_col == 0) return;
    std::string error;
    if (!move_inspected_pixel(state, d_row, d_col, &error)) state.inspect.message = error;
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
        // The images sampled last are here to click, so that no trip to the Sample tab is needed.
        const bool samples = !state.sample.grid.empty();
        ImGui::TextWrapped("Click a pixel of any image (%s, Complete, the data set or the "
                           "training preview) to see which earlier pixels it attends to.",
                           samples ? "the samples below" : "Sample");
        if (samples) draw_sample_grid(state, "inspect_samples", "inspect_samples");
        return;
    }
    arrow_keys(state);
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
        colour_legend(in, kSideWidth * 0.8f);
        export_controls(state);
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
        next_value_chart(state, kChartWidth - 10);
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
