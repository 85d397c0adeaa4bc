// The studio's panels, each a function drawing one tab over StudioState, and the small widgets
// they share.
#pragma once

#include "ui/studio_state.h"

#include <string>
#include <vector>

namespace krause::ui {

// The whole window: model line, tab bar with the panels, status bar.
void draw_studio(StudioState& state);

void draw_model_panel(StudioState& state);
void draw_sample_panel(StudioState& state);
void draw_complete_panel(StudioState& state);
void draw_inspect_panel(StudioState& state);
void draw_compare_panel(StudioState& state);
void draw_train_panel(StudioState& state);
void draw_dynamics_panel(StudioState& state);

// Shared widgets.
void show_error(const std::string& message);
void show_progress(const Progress& progress, const std::string& job_state);
std::string format_duration(double seconds);
std::string format_count(double value);  // 1234567 -> "1.23M"
void model_line(const ModelSummary& summary);
void record_region(StudioState& state, const std::string& name, const ImVec4& rect);

// One column of per-layer measures for the charts of the Inspect and Compare panels.
struct MeasureSeries {
    std::string label;
    const std::vector<LayerMeasures>* measures = nullptr;
    ImU32 color = 0;
};
// Sink mass, oldest key, largest weight, entropy and keys for 90% per layer, stacked vertically.
void draw_measure_charts(const std::vector<MeasureSeries>& series, float width, float chart_height);

}  // namespace krause::ui
