// Dynamics panel: the token states of the residual stream as interacting particles. Per-layer
// curves of collapse measures (open model and Compare model overlaid), and one image's tokens
// projected to the plane, moving from layer to layer, Krause and softmax side by side.
#include "ui/actions.h"
#include "ui/dynamics_view.h"
#include "ui/panels.h"

#include <GLFW/glfw3.h>
#include <imgui.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace krause::ui {

namespace {

constexpr float kChartWidth = 360.0f;
constexpr float kPointRadius = 2.5f;
// Below this share of the common scale a state's particles get a note on how to zoom in.
constexpr float kSmallShare = 0.05f;

ImU32 particle_color(const Particles& p, int64_t token, ParticleColor mode) {
    const int64_t pixel = token / p.channels;
    float hue = 0;
    switch (mode) {
        case ParticleColor::Intensity: {
            // Dark violet for background pixels, through orange to yellow for ink: both stay
            // visible on the dark canvas.
            const float v = p.inputs[token] / 255.0f;
            return ImGui::ColorConvertFloat4ToU32(
                ImVec4(0.25f + 0.75f * v, 0.15f + 0.75f * v * v, 0.55f - 0.35f * v, 1.0f));
        }
        case ParticleColor::Row:
            hue = static_cast<float>(pixel / p.width) / p.height;
            break;
        case ParticleColor::Column:
            hue = static_cast<float>(pixel % p.width) / p.width;
            break;
        case ParticleColor::Order:
            hue = static_cast<float>(token) / p.tokens;
            break;
    }
    float r, g, b;
    ImGui::ColorConvertHSVtoRGB(0.8f * hue, 0.75f, 0.95f, r, g, b);
    return ImGui::ColorConvertFloat4ToU32(ImVec4(r, g, b, 1.0f));
}

// The extent of the points of one (interpolated) layer, padded; for zooming in on late layers,
// whose spread can be far smaller than the embedding's.
ImVec4 layer_bounds(const Particles& p, int64_t l0, int64_t l1, float t) {
    ImVec4 b(1e30f, 1e30f, -1e30f, -1e30f);
    for (int64_t k = 0; k < p.tokens; ++k) {
        const float x = (1 - t) * p.x(l0, k) + t * p.x(l1, k);
        const float y = (1 - t) * p.y(l0, k) + t * p.y(l1, k);
        b = ImVec4(std::min(b.x, x), std::min(b.y, y), std::max(b.z, x), std::max(b.w, y));
    }
    const float pad = 0.05f * std::max({b.z - b.x, b.w - b.y, 1e-6f});
    return ImVec4(b.x - pad, b.y - pad, b.z + pad, b.w + pad);
}

// Draws the particles at (fractional) `layer`; returns the token under the mouse, or -1.
// `waiting`: what the box says while the run has no particles and has not failed.
int draw_particles(const char* id, const DynamicsRun& run, const std::string& title,
                   const char* waiting, float layer, bool fit_layer, ParticleColor mode,
                   int selected, ImVec2 size, bool* clicked, ImVec4* rect) {
    const ImVec2 origin = ImGui::GetCursorScreenPos();
    ImGui::InvisibleButton(id, size);
    *clicked = ImGui::IsItemClicked(ImGuiMouseButton_Left);
    const bool hovered = ImGui::IsItemHovered();
    *rect = ImVec4(origin.x, origin.y, size.x, size.y);
    ImDrawList* draw = ImGui::GetWindowDrawList();
    const ImVec2 end(origin.x + size.x, origin.y + size.y);
    draw->AddRectFilled(origin, end, IM_COL32(18, 18, 24, 255));
    draw->AddRect(origin, end, IM_COL32(90, 90, 100, 255));
    draw->AddText(ImVec2(origin.x + 6, origin.y + 4), IM_COL32(220, 220, 220, 255), title.c_str());
    if (!run.shown || !run.shown->particles_ready) {
        draw->AddText(ImVec2(origin.x + 6, origin.y + 24), IM_COL32(160, 160, 160, 255),
                      run.job && run.job->state() == JobState::Failed ? run.job->error().c_str()
                                                                      : waiting);
        return -1;
    }
    const Particles& p = run.shown->particles;
    const float l = std::clamp(layer, 0.0f, static_cast<float>(p.layers - 1));
    const int64_t l0 = static_cast<int64_t>(std::floor(l));
    const int64_t l1 = std::min<int64_t>(l0 + 1, p.layers - 1);
    const float t = l - static_cast<float>(l0);

    // One scale for both axes keeps the geometry; points beyond the bounds sit on the edge, hollow.
    const ImVec4 own = layer_bounds(p, l0, l1, t);
    const ImVec4 b = fit_layer ? own : run.bounds;
    // In the scale of all layers an early state can shrink to a dot (the residual stream grows
    // with depth): say so, and how to see it.
    const float share = std::max((own.z - own.x) / std::max(b.z - b.x, 1e-6f),
                                 (own.w - own.y) / std::max(b.w - b.y, 1e-6f));
    if (!fit_layer && share < kSmallShare) {
        char note[128];
        std::snprintf(note, sizeof note,
                      "this state spans %.1f%% of the scale of all layers: tick 'fit layer' to "
                      "zoom in",
                      100.0 * share);
        draw->AddText(ImVec2(origin.x + 6, origin.y + 24), IM_COL32(200, 170, 90, 255), note);
    }
    const float margin = 12.0f, top = 24.0f;
    const float scale = std::min((size.x - 2 * margin) / std::max(b.z - b.x, 1e-6f),
                                 (size.y - margin - top) / std::max(b.w - b.y, 1e-6f));
    const ImVec2 centre(origin.x + size.x / 2, origin.y + top + (size.y - top) / 2);
    const float cx = (b.x + b.z) / 2, cy = (b.y + b.w) / 2;
    const float half_w = (size.x - 2 * margin) / 2, half_h = (size.y - margin - top) / 2;
    const ImVec2 mouse = ImGui::GetIO().MousePos;
    int nearest = -1;
    float nearest_d2 = 64.0f;  // within 8 screen pixels
    ImVec2 selected_at(-1, -1);
    for (int64_t k = 0; k < p.tokens; ++k) {
        const float x = (1 - t) * p.x(l0, k) + t * p.x(l1, k);
        const float y = (1 - t) * p.y(l0, k) + t * p.y(l1, k);
        float sx = (x - cx) * scale, sy = -(y - cy) * scale;
        const bool outside = std::abs(sx) > half_w || std::abs(sy) > half_h;
        sx = std::clamp(sx, -half_w, half_w);
        sy = std::clamp(sy, -half_h, half_h);
        const ImVec2 at(centre.x + sx, centre.y + sy);
        const ImU32 color = particle_color(p, k, mode);
        if (outside) {
            draw->AddCircle(at, kPointRadius + 1, color);
        } else {
            draw->AddCircleFilled(at, kPointRadius, color, 8);
        }
        if (k == selected) selected_at = at;
        const float dx = at.x - mouse.x, dy = at.y - mouse.y;
        if (hovered && dx * dx + dy * dy < nearest_d2) {
            nearest_d2 = dx * dx + dy * dy;
            nearest = static_cast<int>(k);
        }
    }
    if (selected_at.x >= 0) draw->AddCircle(selected_at, 7.0f, IM_COL32(0, 255, 255, 255), 16, 2);
    char info[96];
    std::snprintf(info, sizeof info, "PCA of all layers: %.0f%% of the variance",
                  100.0 * p.explained);
    draw->AddText(ImVec2(origin.x + 6, end.y - ImGui::GetTextLineHeight() - 4),
                  IM_COL32(150, 150, 150, 255), info);
    if (nearest >= 0) {
        const int64_t pixel = nearest / p.channels;
        ImGui::SetTooltip(
            "position %d: input pixel (%lld, %lld) = %d\nclick: Inspect this "
            "token's attention (it predicts sub-pixel %d)",
            nearest, static_cast<long long>(pixel / p.width),
            static_cast<long long>(pixel % p.width), p.inputs[nearest], nearest + 1);
    }
    return nearest;
}

std::string state_name(float layer) {
    const int l = static_cast<int>(std::lround(layer));
    return l == 0 ? "embedding" : "after block " + std::to_string(l - 1);
}

void layer_controls(StudioState& state, int layers) {
    DynamicsState& dy = state.dynamics;
    const float last = static_cast<float>(std::max(0, layers - 1));
    if (dy.playing) {
        dy.layer += ImGui::GetIO().DeltaTime * dy.speed;
        if (dy.layer > last) dy.layer = 0;
        glfwPostEmptyEvent();  // keep frames coming while nothing else wakes the loop
    }
    dy.layer = std::clamp(dy.layer, 0.0f, last);
    if (ImGui::Button(dy.playing ? "Pause" : "Play")) dy.playing = !dy.playing;
    ImGui::SameLine();
    ImGui::SetNextItemWidth(320);
    char label[64];
    std::snprintf(label, sizeof label, "%.2f  (%s)", dy.layer, state_name(dy.layer).c_str());
    if (ImGui::SliderFloat("state", &dy.layer, 0.0f, last, label)) dy.playing = false;
    ImGui::SameLine();
    ImGui::SetNextItemWidth(90);
    ImGui::SliderFloat("layers/s", &dy.speed, 0.2f, 6.0f, "%.1f");
    ImGui::SameLine();
    int color = static_cast<int>(dy.color);
    ImGui::SetNextItemWidth(110);
    if (ImGui::Combo("colour", &color, "intensity\0row\0column\0order\0")) {
        dy.color = static_cast<ParticleColor>(color);
    }
    ImGui::SameLine();
    ImGui::Checkbox("fit layer", &dy.fit_layer);
    if (ImGui::IsItemHovered()) {
        ImGui::SetTooltip("scale to the shown layer (otherwise one scale for all layers)");
    }
}

void series_of(const DynamicsRun& run, const char* label, ImU32 color,
               double (*value)(const DynamicsMeasures&, size_t, int), int fraction, bool attention,
               std::vector<PlotSeries>* out) {
    if (!run.shown || !run.shown->ready) return;
    const DynamicsMeasures& m = run.shown->measures;
    PlotSeries s;
    s.label = label;
    s.color = color;
    s.markers = true;
    for (size_t l = attention ? 1 : 0; l < m.states.size(); ++l) {
        s.x.push_back(static_cast<double>(l));
        s.y.push_back(value(m, l, fraction));
    }
    out->push_back(std::move(s));
}

// `waiting`: what an empty chart says while its run has nothing to show.
void charts(StudioState& state, const char* waiting) {
    DynamicsState& dy = state.dynamics;
    struct Chart {
        const char* title;
        double (*value)(const DynamicsMeasures&, size_t, int);
        bool attention, from_zero, clusters;
    };
    static const Chart kCharts[] = {
        {"mean pairwise cosine",
         [](const DynamicsMeasures& m, size_t l, int f) { return m.states[l].cosine; }, false,
         false, false},
        {"distance to consensus ||X - mean|| / ||X||",
         [](const DynamicsMeasures& m, size_t l, int f) { return m.states[l].consensus; }, false,
         true, false},
        {"effective rank (centred)",
         [](const DynamicsMeasures& m, size_t l, int f) { return m.states[l].effective_rank; },
         false, true, false},
        {"clusters",
         [](const DynamicsMeasures& m, size_t l, int f) { return m.states[l].clusters[f]; }, false,
         true, true},
        {"sink mass (attention of the block)",
         [](const DynamicsMeasures& m, size_t l, int f) { return m.attention[l - 1].sink_mass; },
         true, true, false},
        {"oldest key of the window",
         [](const DynamicsMeasures& m, size_t l, int f) { return m.attention[l - 1].oldest_key; },
         true, true, false},
        {"keys holding 90%",
         [](const DynamicsMeasures& m, size_t l, int f) { return m.attention[l - 1].keys_for_90; },
         true, true, false},
    };
    const std::string a = state.model.loaded() ? state.model.summary.attention : "open model";
    const std::string b =
        state.compare.model.loaded() ? state.compare.model.summary.attention + " (Compare)" : "";
    // The eps fractions are the engine's defaults for both runs.
    const auto fractions = default_eps_fractions();
    ImGui::TextDisabled("clusters at eps =");
    for (size_t i = 0; i < fractions.size(); ++i) {
        char label[32];
        std::snprintf(label, sizeof label, "%.2f##eps%zu", fractions[i], i);
        ImGui::SameLine();
        ImGui::RadioButton(label, &dy.cluster_fraction, static_cast<int>(i));
    }
    const int f = std::clamp(dy.cluster_fraction, 0, static_cast<int>(fractions.size()) - 1);
    for (const Chart& c : kCharts) {
        std::vector<PlotSeries> lines;
        series_of(dy.main, a.c_str(), kColorImage, c.value, f, c.attention, &lines);
        series_of(dy.second, b.c_str(), kColorSecond, c.value, f, c.attention, &lines);
        PlotOptions options;
        options.title = c.title;
        if (c.clusters) {
            char eps[64];
            std::snprintf(eps, sizeof eps, " at eps = %.2f x median distance", fractions[f]);
            options.title += eps;
        }
        options.x_label = "state (0: embedding, l: after block l-1)";
        options.integer_x = true;
        options.y_from_zero = c.from_zero;
        // Series without a finite value come from a finished run: nothing is coming.
        options.empty_text = lines.empty() ? waiting : "no values for this model";
        line_chart(c.title, ImVec2(kChartWidth, 150.0f), lines, options);
    }
}

void run_progress(const DynamicsRun& run, const char* name) {
    if (!run.job || !run.shown || run.shown->ready) return;
    ImGui::TextDisabled("%s:", name);
    ImGui::SameLine();
    show_progress(run.shown->progress, job_state(run.job));
}

}  // namespace

void draw_dynamics_panel(StudioState& state) {
    DynamicsState& dy = state.dynamics;
    update_dynamics(state);
    show_error(dy.message);
    if (!state.model.loaded()) {
        ImGui::TextWrapped("Open a model to see how its token states move across depth.");
        return;
    }
    if (!state.data.error.empty()) {
        show_error(state.data.error);
        if (ImGui::Button("Data folder...")) state.folders.window_open = true;
    }
    if (!ImGui::BeginTable("dynamics_layout", 2, ImGuiTableFlags_Resizable)) return;
    ImGui::TableSetupColumn("particles", ImGuiTableColumnFlags_WidthStretch);
    ImGui::TableSetupColumn("charts", ImGuiTableColumnFlags_WidthFixed, kChartWidth + 16);
    ImGui::TableNextColumn();

    ImGui::Text("test image %d", state.data.selected);
    ImGui::SameLine();
    ImGui::SetNextItemWidth(100);
    ImGui::InputInt("##image", &state.data.selected);
    state.data.selected = std::max(0, state.data.selected);
    ImGui::SameLine();
    ImGui::SetNextItemWidth(100);
    ImGui::InputInt("images averaged", &dy.images);
    dy.images = std::clamp(dy.images, 1, 1024);
    ImGui::SameLine();
    if (ImGui::Button("Run again")) {
        std::string error;
        start_dynamics_runs(state, &error);
    }
    run_progress(dy.main, "open model");
    run_progress(dy.second, "Compare model");

    int layers = 0;
    for (const DynamicsRun* run : {&dy.main, &dy.second}) {
        if (run->shown && run->shown->particles_ready) {
            layers = std::max(layers, static_cast<int>(run->shown->particles.layers));
        }
    }
    layer_controls(state, layers);

    const char* waiting = dynamics_waiting_text(state);
    const bool two = state.compare.model.loaded();
    const ImVec2 avail = ImGui::GetContentRegionAvail();
    const float side = std::max(120.0f, std::min(avail.y - 8, two ? avail.x / 2 - 6 : avail.x));
    struct View {
        const DynamicsRun* run;
        const ModelSlot* slot;
        const char* id;
        const char* region;
    };
    const View views[] = {
        {&dy.main, &state.model, "particles_a", "dynamics_particles_a"},
        {&dy.second, &state.compare.model, "particles_b", "dynamics_particles_b"}};
    for (int v = 0; v < (two ? 2 : 1); ++v) {
        if (v == 1) ImGui::SameLine();
        const View& view = views[v];
        const std::string title = view.slot->summary.attention +
                                  " attention: " + state_name(dy.layer) +
                                  (v == 1 ? "  (Compare model)" : "");
        bool clicked = false;
        ImVec4 rect;
        const int hit = draw_particles(view.id, *view.run, title, waiting, dy.layer, dy.fit_layer,
                                       dy.color, dy.selected, ImVec2(side, side), &clicked, &rect);
        record_region(state, view.region, rect);
        if (clicked && hit >= 0) {
            dy.selected = hit;
            const auto& p = view.run->shown->particles;
            const int sub = hit + 1;  // the query at position hit explains sub-pixel hit + 1
            const int pixel = static_cast<int>(sub / p.channels);
            std::string error;
            if (!inspect_pixel(state, "data", state.data.selected, pixel / p.width, pixel % p.width,
                               static_cast<int>(sub % p.channels), &error)) {
                dy.message = error;
            }
        }
    }

    ImGui::TableNextColumn();
    ImGui::BeginChild("dynamics_charts", ImVec2(0, 0));
    const ImVec2 chart_origin = ImGui::GetCursorScreenPos();
    charts(state, waiting);
    record_region(state, "dynamics_charts",
                  ImVec4(chart_origin.x, chart_origin.y, kChartWidth, 4 * 150.0f));
    ImGui::EndChild();
    ImGui::EndTable();
}

}  // namespace krause::ui
