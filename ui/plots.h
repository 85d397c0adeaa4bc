// Small charts drawn with ImGui draw lists: line charts (curves, per-layer measures) and a
// coloured matrix (sink mass of every layer over training).
#pragma once

#include <imgui.h>

#include <string>
#include <vector>

namespace krause::ui {

struct PlotSeries {
    // Left out of the legend and the hover read-out when empty (the faint raw line under a
    // smoothed one).
    std::string label;
    std::vector<double> x, y;
    ImU32 color = IM_COL32(255, 200, 80, 255);
    bool markers = false;  // a dot per point, for short series such as one value per layer
};

struct PlotOptions {
    std::string title;
    std::string x_label;
    bool y_from_zero = false;  // include 0 in the y range (fractions, counts)
    bool integer_x = false;    // label x ticks as integers (layers, steps)
    bool log_y = false;        // logarithmic y axis; values <= 0 are left out
    std::string empty_text = "no data yet";  // shown while no series has a point
};

// A line chart filling `size`. Hovering shows every series' value at the nearest x.
void line_chart(const char* id, ImVec2 size, const std::vector<PlotSeries>& series,
                const PlotOptions& options);

// values[col][row] as coloured cells: columns left to right, row 0 at the top. `col_labels` name
// the columns in the hover text (e.g. the training step of each evaluation).
void matrix_chart(const char* id, ImVec2 size, const std::vector<std::vector<double>>& values,
                  const std::vector<long long>& col_labels, const char* row_name,
                  const char* col_name, const char* value_name);

// Colours shared by the charts so that "this pixel" and "whole image" look alike everywhere.
constexpr ImU32 kColorPixel = IM_COL32(255, 170, 60, 255);
constexpr ImU32 kColorImage = IM_COL32(90, 170, 255, 255);
constexpr ImU32 kColorSecond = IM_COL32(120, 230, 120, 255);
constexpr ImU32 kColorSecondImage = IM_COL32(220, 120, 230, 255);

}  // namespace krause::ui
