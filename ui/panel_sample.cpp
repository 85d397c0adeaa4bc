// Sample panel: a grid of images that fill in live, sub-pixel by sub-pixel, and saving it.
#include "ui/actions.h"
#include "ui/panels.h"

#include <imgui.h>
#include <imgui_stdlib.h>

#include <algorithm>
#include <cmath>

namespace krause::ui {

void draw_sample_grid(StudioState& state, const char* id, const char* region) {
    const ImageGrid& grid = state.sample.grid;
    const int n = grid.count();
    const int columns = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(n))));
    const ImVec2 avail = ImGui::GetContentRegionAvail();
    const Images& images = grid.images();
    const float scale = fit_scale(avail, n, columns, images.height, images.width);
    PixelRef clicked;
    PixelRef mark;
    if (state.inspect.has_target && state.inspect.target.source == "sample") {
        mark = PixelRef{state.inspect.target.image, state.inspect.target.row,
                        state.inspect.target.col};
    }
    ImVec4 rect;
    if (grid.draw(id, scale, columns, &clicked, mark, &rect)) {
        std::string error;
        if (!inspect_pixel(state, "sample", clicked.image, clicked.row, clicked.col,
                           state.inspect.channel, &error)) {
            state.inspect.message = error;
        }
    }
    record_region(state, region, rect);
}

void draw_sample_panel(StudioState& state) {
    SampleState& s = state.sample;
    const bool running = s.job && !s.job->done();

    ImGui::SetNextItemWidth(160);
    ImGui::SliderInt("images", &s.count, 1, 64);
    ImGui::SameLine();
    ImGui::SetNextItemWidth(160);
    ImGui::SliderFloat("temperature", &s.temperature, 0.05f, 2.0f, "%.2f");
    ImGui::SameLine();
    ImGui::SetNextItemWidth(120);
    ImGui::InputInt("seed", &s.seed);
    ImGui::SameLine();
    ImGui::BeginDisabled(s.fast);
    ImGui::SetNextItemWidth(160);
    ImGui::SliderInt("sub-pixels per frame", &s.tokens_per_frame, 1, 64);
    ImGui::EndDisabled();
    ImGui::SameLine();
    ImGui::Checkbox("as fast as possible", &s.fast);

    std::string error;
    if (ImGui::Button(running ? "Restart" : "Sample")) {
        if (!start_sample(state, &error)) s.message = error;
    }
    ImGui::SameLine();
    ImGui::BeginDisabled(!running);
    if (ImGui::Button("Stop")) s.job->request_stop();
    ImGui::EndDisabled();
    ImGui::SameLine();
    png_target_fields(&s.png_path, &s.png_scale, 260);
    ImGui::SameLine();
    save_png_button(state, "samples", s.png_path, s.png_scale, &s.message);
    if (s.job && s.shown) show_progress(s.shown->progress, job_state(s.job));
    if (s.job && s.job->state() == JobState::Failed) show_error(s.job->error());
    if (!s.message.empty()) ImGui::TextWrapped("%s", s.message.c_str());
    show_error(state.inspect.message);

    if (s.grid.empty()) {
        ImGui::TextDisabled(state.model.loaded() ? "Press Sample to draw images from the model."
                                                 : "Open a model first (Model panel).");
        return;
    }
    draw_sample_grid(state, "samples", "sample_grid");
}

}  // namespace krause::ui
