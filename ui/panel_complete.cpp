// Complete panel: browse the test set, keep the top rows of one image, and watch K completions
// of the rest appear beside the prompt and the original.
#include "training/options.h"
#include "ui/actions.h"
#include "ui/data_folder.h"
#include "ui/panels.h"

#include <imgui.h>
#include <imgui_stdlib.h>

#include <algorithm>
#include <cmath>
#include <iterator>

namespace krause::ui {

namespace {

constexpr int kThumbColumns = 8;

void inspect_click(StudioState& state, const char* source, const PixelRef& at) {
    std::string error;
    if (!inspect_pixel(state, source, at.image, at.row, at.col, state.inspect.channel, &error)) {
        state.inspect.message = error;
    }
}

PixelRef mark_for(const StudioState& state, const char* source, int image_offset = 0) {
    const InspectState& in = state.inspect;
    if (!in.has_target || in.target.source != source) return PixelRef();
    return PixelRef{in.target.image - image_offset, in.target.row, in.target.col};
}

void data_controls(StudioState& state) {
    DataState& d = state.data;
    ImGui::SetNextItemWidth(140);
    if (choice_combo("data", &d.kind, dataset_kind_choices())) d.dir = data_dir_for(state, d.kind);
    ImGui::SameLine();
    ImGui::BeginDisabled(d.loading != nullptr);
    if (ImGui::Button("Load test set")) load_data(state);
    ImGui::EndDisabled();
    ImGui::SameLine();
    if (d.loading) {
        ImGui::TextUnformatted("loading ...");
    } else if (d.data) {
        ImGui::Text("%lld test images, %lldx%lldx%lld", static_cast<long long>(d.data->size()),
                    static_cast<long long>(d.data->height), static_cast<long long>(d.data->width),
                    static_cast<long long>(d.data->channels));
    }
    data_folder_line(state, d.kind);
    show_error(d.error);
}

void thumbnails(StudioState& state) {
    DataState& d = state.data;
    const int page_size = data_page_size();
    const int pages = static_cast<int>((d.data->size() + page_size - 1) / page_size);
    if (ImGui::ArrowButton("prev", ImGuiDir_Left)) d.page = std::max(0, d.page - 1);
    ImGui::SameLine();
    ImGui::Text("page %d / %d", d.page + 1, pages);
    ImGui::SameLine();
    if (ImGui::ArrowButton("next", ImGuiDir_Right)) d.page = std::min(pages - 1, d.page + 1);
    ImGui::SameLine();
    ImGui::SetNextItemWidth(100);
    if (ImGui::InputInt("image", &d.selected)) d.page = std::max(0, d.selected) / page_size;

    PixelRef clicked;
    const int first = d.page * page_size;
    const float width = ImGui::GetContentRegionAvail().x - (kThumbColumns - 1) * kGridGap;
    const float scale =
        std::max(1.0f, width / (kThumbColumns * std::max<int64_t>(1, d.data->width)));
    if (d.page_shown == d.page &&
        d.page_grid.draw("thumbs", std::min(scale, 2.0f), kThumbColumns, &clicked)) {
        d.selected = first + clicked.image;
    }
    ImGui::TextDisabled("click a thumbnail to choose the image to complete");
}

// Drawing tools and the canvas: the prompt is the canvas's top rows.
void canvas_view(StudioState& state) {
    CompleteState& c = state.complete;
    const ModelSummary& m = state.model.summary;
    if (!state.model.loaded()) {
        ImGui::TextDisabled("Open a model first: the canvas takes its image size.");
        return;
    }
    c.canvas.reshape(m.image_height, m.image_width, m.image_channels);
    PromptCanvas& canvas = c.canvas;
    ImGui::SetNextItemWidth(120);
    ImGui::SliderInt("brush radius", &canvas.radius, 0, 6);
    ImGui::SameLine();
    ImGui::Checkbox("eraser", &canvas.eraser);
    ImGui::SameLine();
    if (ImGui::Button("Clear")) canvas.clear();
    if (m.image_channels == 3) {
        ImGui::SetNextItemWidth(240);
        ImGui::ColorEdit3("brush colour", canvas.colour);
    } else {
        float& level = canvas.colour[0];
        ImGui::SetNextItemWidth(240);
        if (ImGui::SliderFloat("brush grey", &level, 0.0f, 1.0f, "%.2f")) {
            canvas.colour[1] = canvas.colour[2] = level;
        }
    }
    ImGui::SetNextItemWidth(300);
    ImGui::InputText("##canvas_png", &c.canvas_png);
    ImGui::SameLine();
    if (ImGui::Button("Load PNG")) {
        std::string error;
        c.message = canvas.load_png(c.canvas_png, &error) ? "" : error;
    }
    const float scale = std::floor(std::min(ImGui::GetContentRegionAvail().x - 16, 448.0f) /
                                   std::max<int64_t>(1, m.image_width));
    record_region(state, "canvas", canvas.draw("canvas", std::max(2.0f, scale), c.rows));
    ImGui::TextDisabled("drag to paint; the model keeps the rows above the cyan line");
}

}  // namespace

void draw_complete_panel(StudioState& state) {
    DataState& d = state.data;
    CompleteState& c = state.complete;
    ImGui::TextUnformatted("Prompt from");
    ImGui::SameLine();
    int from = c.drawn ? 1 : 0;
    ImGui::RadioButton("a test image", &from, 0);
    ImGui::SameLine();
    ImGui::RadioButton("my drawing", &from, 1);
    c.drawn = from == 1;
    if (!c.drawn) {
        data_controls(state);
        if (!d.data && !d.loading && d.error.empty() && !d.dir.empty()) load_data(state);
    }
    if (!d.data && !c.drawn) {
        ImGui::TextDisabled("Load a test set to choose an image to complete, or draw a prompt.");
        return;
    }
    const int height =
        static_cast<int>(c.drawn ? state.model.summary.image_height : d.data->height);
    const int64_t image_w = c.drawn ? state.model.summary.image_width : d.data->width;

    if (ImGui::BeginTable("complete_layout", 2, ImGuiTableFlags_Resizable)) {
        ImGui::TableSetupColumn("browse", ImGuiTableColumnFlags_WidthFixed, 520);
        ImGui::TableNextColumn();
        PixelRef clicked;
        ImVec4 rect;
        if (c.drawn) {
            canvas_view(state);
        } else {
            thumbnails(state);
            ImGui::Separator();
            ImGui::Text("Image %d, label %s: click a pixel to inspect it", d.selected,
                        label_text(d, d.selected).c_str());
            const float scale = 224.0f / std::max<int64_t>(1, d.data->width);
            if (d.selected_shown == d.selected &&
                d.selected_grid.draw("selected", scale, 1, &clicked,
                                     mark_for(state, "data", d.selected), &rect)) {
                inspect_click(state, "data", PixelRef{d.selected, clicked.row, clicked.col});
            }
            record_region(state, "data_image", rect);
        }

        ImGui::TableNextColumn();
        const bool running = c.job && !c.job->done();
        ImGui::SetNextItemWidth(160);
        ImGui::SliderInt("rows kept", &c.rows, 1, std::max(2, height) - 1);
        ImGui::SameLine();
        ImGui::SetNextItemWidth(120);
        ImGui::SliderInt("completions", &c.count, 1, 16);
        ImGui::SetNextItemWidth(160);
        ImGui::SliderFloat("temperature", &c.temperature, 0.05f, 2.0f, "%.2f");
        ImGui::SameLine();
        ImGui::SetNextItemWidth(120);
        ImGui::InputInt("seed", &c.seed);
        std::string error;
        if (ImGui::Button(running ? "Restart" : "Complete")) {
            if (!start_complete(state, &error)) c.message = error;
        }
        ImGui::SameLine();
        ImGui::BeginDisabled(!running);
        if (ImGui::Button("Stop")) c.job->request_stop();
        ImGui::EndDisabled();
        ImGui::SameLine();
        png_target_fields(&c.png_path, &c.png_scale, 180);
        ImGui::SameLine();
        save_png_button(state, "completions", c.png_path, c.png_scale, &c.message);
        if (c.job && c.shown) show_progress(c.shown->progress, job_state(c.job));
        if (c.job && c.job->state() == JobState::Failed) show_error(c.job->error());
        show_error(c.message);
        show_error(state.inspect.message);

        if (!c.prompt.empty()) {
            // Prompt, up to four completions per row, and the original share the column.
            const int per_row = std::min(4, std::max(1, c.completions.count()));
            const float avail = ImGui::GetContentRegionAvail().x - 32 - (per_row + 1) * kGridGap;
            const float cell = std::clamp(
                std::floor(avail / ((per_row + 2) * std::max<int64_t>(1, image_w))), 2.0f, 6.0f);
            ImGui::BeginGroup();
            ImGui::TextUnformatted("prompt");
            c.prompt.draw("prompt", cell, 1, nullptr);
            ImGui::EndGroup();
            ImGui::SameLine(0, 16);
            ImGui::BeginGroup();
            ImGui::TextUnformatted("completions (click a pixel to inspect)");
            if (c.completions.draw("completions", cell, 4, &clicked, mark_for(state, "complete"),
                                   &rect)) {
                inspect_click(state, "complete", clicked);
            }
            record_region(state, "complete_grid", rect);
            ImGui::EndGroup();
            ImGui::SameLine(0, 16);
            ImGui::BeginGroup();
            ImGui::TextUnformatted(c.drawn ? "the drawing" : "original");
            c.original.draw("original", cell, 1, nullptr);
            ImGui::EndGroup();
        }
        ImGui::EndTable();
    }
}

}  // namespace krause::ui
