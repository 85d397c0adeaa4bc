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
// The sample grid filling the space left, where a click on a pixel inspects it; `region` names
// its rectangle in the scripts' state dump. Sample tab, and the Inspect tab before a pixel is
// chosen.
void draw_sample_grid(StudioState& state, const char* id, const char* region);
void draw_complete_panel(StudioState& state);
void draw_inspect_panel(StudioState& state);
void draw_compare_panel(StudioState& state);
void draw_train_panel(StudioState& state);
// The bundled models as a table on the Model tab; a click opens one as the main model.
void draw_bundled_picker(StudioState& state);

// Around the panels (studio_chrome.cpp): Ctrl+O, Ctrl+Q and Space; the View popup of the status
// bar; dialogs and banners drawn over the window.
void handle_shortcuts(StudioState& state);
void view_settings_button(StudioState& state);
void draw_overlays(StudioState& state);

void draw_dynamics_panel(StudioState& state);

// Shared widgets.
void show_error(const std::string& message);
// A folder browser's Up button (lists the parent folder), and its sub-folders as selectables
// where a double-click enters one; true when it moved.
void browser_up_button(FileBrowser& browser, const char* label);
bool browser_folder_rows(FileBrowser& browser);
// A PNG's path field and its scale (image pixels per view pixel, 1..64), on one line.
void png_target_fields(std::string* path, int* scale, float path_width);
// A "Save PNG" button writing view `what` (export_png); *message says what happened.
void save_png_button(StudioState& state, const char* what, const std::string& path, int scale,
                     std::string* message);
// A combo over `names` editing a string; true when the user picked one.
bool choice_combo(const char* label, std::string* value, const std::vector<std::string>& names);
void show_progress(const Progress& progress, const std::string& job_state);
std::string format_duration(double seconds);
std::string format_count(double value);  // 1234567 -> "1.23M"
void model_line(const ModelSummary& summary);
void record_region(StudioState& state, const std::string& name, const ImVec4& rect);

// Training curves (ui/panel_curves.cpp): the smoothing / log / T-or-T-1 controls; the chart of a
// live run and any number of read-back runs, returning its series for the CSV export; the
// controls that add runs to the Train panel's chart; and the export of a chart drawn just before.
void curve_view_controls(CurveView& view);
std::vector<CsvSeries> training_chart(const char* id, ImVec2 size, const TrainSnapshot* live,
                                      const std::vector<RunCurves>& runs, const CurveView& view,
                                      ImVec4* rect);
void run_overlay_controls(StudioState& state);
void chart_export_controls(StudioState& state, const std::vector<CsvSeries>& csv,
                           const ImVec4& chart_rect);
bool add_run_curves(StudioState& state, const std::string& path, std::string* error);
void request_chart_export(StudioState& state, const std::string& base);
// "0.25" steps/s rather than "0": rates below 10 keep decimals.
std::string format_rate(double per_second);

// One column of per-layer measures for the charts of the Inspect and Compare panels.
struct MeasureSeries {
    std::string label;
    const std::vector<LayerMeasures>* measures = nullptr;
    ImU32 color = 0;
};
// Sink mass, oldest key, largest weight, entropy and keys for 90% per layer, stacked vertically.
void draw_measure_charts(const std::vector<MeasureSeries>& series, float width, float chart_height);

}  // namespace krause::ui
