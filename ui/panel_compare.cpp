// Compare panel: a second checkpoint beside the main one on the same image and pixel: attention
// maps of one layer, per-layer sink mass and concentration, and samples from the same seed.
#include "ui/actions.h"
#include "ui/panels.h"

#include <imgui.h>
#include <imgui_stdlib.h>

#include <algorithm>
#include <cmath>

namespace krause::ui {

namespace {

constexpr float kColumnGap = 24.0f;

void second_model_controls(StudioState& state) {
    ModelSlot& slot = state.compare.model;
    ImGui::TextUnformatted("Second model");
    ImGui::SameLine();
    ImGui::SetNextItemWidth(420);
    const bool enter =
        ImGui::InputText("##second", &slot.path_field, ImGuiInputTextFlags_EnterReturnsTrue);
    ImGui::SameLine();
    if ((ImGui::Button("Open") || enter) && !slot.path_field.empty()) {
        open_model(state, slot, slot.path_field);
    }
    ImGui::SameLine();
    ImGui::SetNextItemWidth(200);
    if (ImGui::BeginCombo("##recent", "recent files")) {
        for (const auto& path : state.recent) {
            if (ImGui::Selectable(path.c_str())) {
                const std::string chosen = path;
                open_model(state, slot, chosen);
            }
        }
        ImGui::EndCombo();
    }
    ImGui::SameLine();
    ImGui::SetNextItemWidth(200);
    if (ImGui::BeginCombo("##bundled", "bundled models")) {
        for (const BundledModel& m : state.bundled) {
            if (!m.path.empty() && ImGui::Selectable(m.name.c_str())) {
                open_model(state, slot, m.path);
            }
        }
        ImGui::EndCombo();
    }
    // A bundled model's twins are one click away: Compare works on a first start.
    if (!slot.loaded() && !slot.opening) {
        const auto twins = bundled_twins(state);
        for (size_t i = 0; i < twins.size(); ++i) {
            if (i == 0) ImGui::TextUnformatted(twins.size() == 1 ? "Its twin:" : "Its twins:");
            ImGui::SameLine();
            const std::string label = twins[i]->name + " (" + twins[i]->attention + ")";
            if (ImGui::Button(label.c_str())) open_model(state, slot, twins[i]->path);
        }
    }
    if (slot.opening) ImGui::Text("Opening %s ...", slot.path_field.c_str());
    show_error(slot.error);
}

// One model's maps for the chosen layer: every head in a row, and the chosen head enlarged.
void maps_column(StudioState& state, const char* id, const char* title, const ModelSummary& model,
                 const AttentionMaps& maps, const std::string& job, float width) {
    ImGui::BeginGroup();
    ImGui::Text("%s: %s, %lld layers", title, model.attention.c_str(),
                static_cast<long long>(model.n_layers));
    if (!maps.ready()) {
        ImGui::TextDisabled("probing ... (%s)", job.c_str());
        ImGui::Dummy(ImVec2(width, 1));
        ImGui::EndGroup();
        return;
    }
    CompareState& c = state.compare;
    const int layer = std::clamp(c.layer, 0, maps.layers() - 1);
    const int head = std::clamp(state.inspect.head, 0, maps.heads() - 1);
    const int64_t image_w = state.inspect.target.pixels.width;
    const float small =
        std::max(1.0f, std::floor((width - maps.heads() * kMapGap) / (maps.heads() * image_w)));
    ImGui::PushID(id);
    for (int h = 0; h < maps.heads(); ++h) {
        if (h > 0) ImGui::SameLine(0, kMapGap);
        ImGui::PushID(h);
        maps.draw_map("head", layer, h, std::min(small, 4.0f), false);
        if (ImGui::IsItemClicked()) state.inspect.head = h;
        ImGui::PopID();
    }
    ImGui::Text("layer %d, head %d (sink %.4f, largest %.4f)", layer, head,
                maps.info(layer, head).sink, maps.info(layer, head).max_weight);
    ImVec4 rect;
    maps.draw_map("enlarged", layer, head,
                  std::max(1.0f, std::floor(std::min(width, 300.0f) / image_w)), true, &rect);
    record_region(state, std::string("compare_map_") + id, rect);
    ImGui::PopID();
    ImGui::EndGroup();
}

}  // namespace

void draw_compare_panel(StudioState& state) {
    CompareState& c = state.compare;
    second_model_controls(state);
    if (!state.model.loaded() || !c.model.loaded()) {
        ImGui::TextWrapped("%s", !state.model.loaded()
                                     ? "Open a model in the Model panel and a second one here "
                                       "to compare them on the same image and pixel."
                                     : "Open a second model above (a path, a recent file, a "
                                       "bundled model or a twin) to compare it with the open "
                                       "one on the same image and pixel.");
        return;
    }
    model_line(c.model.summary);
    const InspectState& in = state.inspect;
    std::string error;
    if (in.has_target) {
        ImGui::Text("pixel: row %d, column %d%s of %s image %d (both models probe it)",
                    in.target.row, in.target.col,
                    in.target.pixels.channels == 3 ? (in.target.channel == 0   ? ", red"
                                                      : in.target.channel == 1 ? ", green"
                                                                               : ", blue")
                                                   : "",
                    in.target.source.c_str(), in.target.image);
    } else {
        ImGui::TextDisabled("Click a pixel of any image to choose what both models explain.");
    }
    const int max_layers =
        static_cast<int>(std::max(state.model.summary.n_layers, c.model.summary.n_layers));
    ImGui::SetNextItemWidth(200);
    ImGui::SliderInt("layer", &c.layer, 0, std::max(0, max_layers - 1));
    show_error(c.message);

    const float avail = ImGui::GetContentRegionAvail().x;
    const float chart_w = 340.0f;
    const float column_w = (avail - chart_w - 2 * kColumnGap) / 2;
    if (in.has_target) {
        maps_column(state, "a", "A (main)", state.model.summary, in.maps, job_state(in.job),
                    column_w);
        ImGui::SameLine(0, kColumnGap);
        maps_column(state, "b", "B (second)", c.model.summary, c.maps, job_state(c.inspect),
                    column_w);
        ImGui::SameLine(0, kColumnGap);
        ImGui::BeginGroup();
        const ProbeResult* a = in.maps.result();
        const ProbeResult* b = c.maps.result();
        std::vector<MeasureSeries> series;
        if (a) {
            series.push_back({"A pixel", &a->at_queries, kColorPixel});
            series.push_back({"A image", &in.over_image, kColorImage});
        }
        if (b) {
            series.push_back({"B pixel", &b->at_queries, kColorSecond});
            series.push_back({"B image", &c.over_image, kColorSecondImage});
        }
        if (!in.measures && a && ImGui::Button("Average over the whole image")) {
            if (!start_image_averages(state, &error)) c.message = error;
        }
        ImGui::BeginChild("compare_charts", ImVec2(chart_w, 330), false);
        draw_measure_charts(series, chart_w - 10, 150.0f);
        ImGui::EndChild();
        ImGui::EndGroup();
    }

    ImGui::Separator();
    ImGui::SetNextItemWidth(140);
    ImGui::SliderInt("images", &c.count, 1, 32);
    ImGui::SameLine();
    ImGui::SetNextItemWidth(120);
    ImGui::InputInt("seed", &c.seed);
    ImGui::SameLine();
    if (ImGui::Button("Sample both")) {
        if (!start_compare_samples(state, &error)) c.message = error;
    }
    const ImVec2 grid_avail(column_w, ImGui::GetContentRegionAvail().y - 20);
    auto grid = [&](const char* id, const char* source, const std::string& title,
                    const ImageGrid& g, const std::unique_ptr<Job<SampleSnapshot>>& job) {
        ImGui::BeginGroup();
        ImGui::Text("%s: %s", title.c_str(),
                    job ? job_state(job).c_str() : "press Sample both");
        if (!g.empty()) {
            const int columns = static_cast<int>(std::ceil(std::sqrt(double(g.count()))));
            const float scale =
                fit_scale(grid_avail, g.count(), columns, g.images().height, g.images().width);
            PixelRef clicked;
            ImVec4 rect;
            if (g.draw(id, std::min(scale, 4.0f), columns, &clicked, PixelRef(), &rect)) {
                if (!inspect_pixel(state, source, clicked.image, clicked.row, clicked.col,
                                   state.inspect.channel, &error)) {
                    c.message = error;
                }
            }
            record_region(state, std::string("compare_") + id, rect);
        }
        ImGui::Dummy(ImVec2(column_w, 1));
        ImGui::EndGroup();
    };
    grid("samples_a", "compare-a", state.model.summary.attention + " (open model)", c.grid_a,
         c.sample_a);
    ImGui::SameLine(0, kColumnGap);
    grid("samples_b", "compare-b", c.model.summary.attention + " (second model)", c.grid_b,
         c.sample_b);
}

}  // namespace krause::ui
