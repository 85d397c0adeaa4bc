// Chart drawing: axis ranges with a margin, tick labels at the ends, nearest-x hover read-out.
#include "ui/plots.h"

#include "ui/heatmap.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace krause::ui {

namespace {

constexpr ImU32 kFrame = IM_COL32(90, 90, 100, 255);

// The charts follow the theme: labels in its text colour, a plot area a shade off the window's
// background, dark or light.
bool light_theme() {
    const ImVec4 bg = ImGui::GetStyleColorVec4(ImGuiCol_WindowBg);
    return 0.299f * bg.x + 0.587f * bg.y + 0.114f * bg.z > 0.5f;
}
ImU32 background() {
    return light_theme() ? IM_COL32(248, 248, 250, 255) : IM_COL32(22, 22, 28, 255);
}
ImU32 text() { return ImGui::GetColorU32(ImGuiCol_Text); }
ImU32 guide() { return ImGui::GetColorU32(ImGuiCol_Text, 0.25f); }

void format_value(char* out, size_t size, double v, bool integer) {
    if (integer) {
        std::snprintf(out, size, "%lld", static_cast<long long>(std::llround(v)));
    } else if (v != 0 && (std::fabs(v) < 1e-2 || std::fabs(v) >= 1e4)) {
        std::snprintf(out, size, "%.2e", v);
    } else {
        std::snprintf(out, size, "%.3g", v);
    }
}

}  // namespace

void line_chart(const char* id, ImVec2 size, const std::vector<PlotSeries>& series,
                const PlotOptions& options) {
    ImGui::PushID(id);
    const ImVec2 origin = ImGui::GetCursorScreenPos();
    ImGui::InvisibleButton("chart", size);
    const bool hovered = ImGui::IsItemHovered();
    ImDrawList* draw = ImGui::GetWindowDrawList();
    const float line_h = ImGui::GetTextLineHeight();
    float legend_bottom = 0;

    // The legend wraps onto as many lines as it needs; the plot area starts below it.
    std::vector<ImVec2> legend_at(series.size());
    {
        float x = origin.x + 48, y = origin.y + line_h + 1;
        for (size_t i = 0; i < series.size(); ++i) {
            if (series[i].label.empty()) continue;
            const float w = ImGui::CalcTextSize(series[i].label.c_str()).x + 20;
            if (x + w > origin.x + size.x && x > origin.x + 48) {
                x = origin.x + 48;
                y += line_h + 1;
            }
            legend_at[i] = ImVec2(x, y);
            x += w;
        }
        legend_bottom = y + line_h + 3;
    }
    const ImVec2 p0(origin.x + 48, legend_bottom);
    const ImVec2 p1(origin.x + size.x - 6, origin.y + size.y - line_h - 4);
    draw->AddRectFilled(p0, p1, background());
    draw->AddRect(p0, p1, kFrame);
    draw->AddText(ImVec2(origin.x + 4, origin.y), text(), options.title.c_str());
    for (size_t i = 0; i < series.size(); ++i) {
        if (series[i].label.empty()) continue;
        const ImVec2 at = legend_at[i];
        draw->AddRectFilled(ImVec2(at.x, at.y + 3), ImVec2(at.x + 10, at.y + 11), series[i].color);
        draw->AddText(ImVec2(at.x + 13, at.y), text(), series[i].label.c_str());
    }
    // On a log axis the chart works on log10(y); labels and the read-out show y itself.
    const bool log_y = options.log_y;
    auto ty = [log_y](double y) {
        return log_y ? (y > 0 ? std::log10(y) : std::numeric_limits<double>::quiet_NaN()) : y;
    };
    auto untransform = [log_y](double v) { return log_y ? std::pow(10.0, v) : v; };

    double x_min = std::numeric_limits<double>::infinity(), x_max = -x_min;
    double y_min = x_min, y_max = -x_min;
    for (const auto& s : series) {
        for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
            const double y = ty(s.y[i]);
            if (!std::isfinite(y)) continue;
            x_min = std::min(x_min, s.x[i]);
            x_max = std::max(x_max, s.x[i]);
            y_min = std::min(y_min, y);
            y_max = std::max(y_max, y);
        }
    }
    if (!std::isfinite(x_min)) {
        draw->AddText(ImVec2(p0.x + 8, p0.y + 8), text(), options.empty_text.c_str());
        ImGui::PopID();
        return;
    }
    if (options.y_from_zero && !log_y) y_min = std::min(0.0, y_min);
    if (y_max - y_min < 1e-12) y_max = y_min + std::max(1e-3, std::fabs(y_min) * 0.1);
    const double margin = (y_max - y_min) * 0.06;
    y_max += margin;
    if (!options.y_from_zero || log_y || y_min < 0) y_min -= margin;
    if (x_max - x_min < 1e-12) {
        x_min -= 0.5;
        x_max += 0.5;
    }
    // A little room at both ends, so that a point on the edge (the newest evaluation) shows; the
    // tick labels keep naming the data's first and last x.
    const double x_first = x_min, x_last = x_max;
    const double pad = (x_max - x_min) * 0.015;
    x_min -= pad;
    x_max += pad;
    auto to_screen = [&](double x, double y) {
        return ImVec2(p0.x + static_cast<float>((x - x_min) / (x_max - x_min)) * (p1.x - p0.x),
                      p1.y - static_cast<float>((y - y_min) / (y_max - y_min)) * (p1.y - p0.y));
    };

    char label[48];
    format_value(label, sizeof label, untransform(y_max), false);
    draw->AddText(ImVec2(origin.x + 2, p0.y), text(), label);
    format_value(label, sizeof label, untransform(y_min), false);
    draw->AddText(ImVec2(origin.x + 2, p1.y - line_h), text(), label);
    format_value(label, sizeof label, x_first, options.integer_x);
    draw->AddText(ImVec2(p0.x, p1.y + 2), text(), label);
    format_value(label, sizeof label, x_last, options.integer_x);
    const float w = ImGui::CalcTextSize(label).x;
    draw->AddText(ImVec2(p1.x - w, p1.y + 2), text(), label);
    if (!options.x_label.empty()) {
        const float lw = ImGui::CalcTextSize(options.x_label.c_str()).x;
        draw->AddText(ImVec2((p0.x + p1.x - lw) / 2, p1.y + 2), text(), options.x_label.c_str());
    }

    draw->PushClipRect(p0, p1, true);
    for (const auto& s : series) {
        const size_t n = std::min(s.x.size(), s.y.size());
        std::vector<ImVec2> points;
        points.reserve(n);
        for (size_t i = 0; i < n; ++i) {
            const double y = ty(s.y[i]);
            if (std::isfinite(y)) points.push_back(to_screen(s.x[i], y));
        }
        if (points.size() > 1) {
            draw->AddPolyline(points.data(), static_cast<int>(points.size()), s.color, 0, 1.5f);
        }
        if (s.markers || points.size() == 1) {
            for (const auto& p : points) draw->AddCircleFilled(p, 3.0f, s.color);
        }
    }
    draw->PopClipRect();

    if (hovered) {
        const float mx = ImGui::GetIO().MousePos.x;
        const double x = x_min + (mx - p0.x) / (p1.x - p0.x) * (x_max - x_min);
        ImGui::BeginTooltip();
        bool any = false;
        for (const auto& s : series) {
            const size_t n = std::min(s.x.size(), s.y.size());
            if (n == 0 || s.label.empty()) continue;
            size_t best = 0;
            for (size_t i = 1; i < n; ++i) {
                if (std::fabs(s.x[i] - x) < std::fabs(s.x[best] - x)) best = i;
            }
            char xs[48], ys[48];
            format_value(xs, sizeof xs, s.x[best], options.integer_x);
            format_value(ys, sizeof ys, s.y[best], false);
            ImGui::TextColored(ImGui::ColorConvertU32ToFloat4(s.color), "%s: %s at %s %s",
                               s.label.c_str(), ys, options.x_label.c_str(), xs);
            if (!any) {
                const float sx = to_screen(s.x[best], 0).x;
                draw->AddLine(ImVec2(sx, p0.y), ImVec2(sx, p1.y), guide());
            }
            any = true;
        }
        ImGui::EndTooltip();
    }
    ImGui::PopID();
}

void matrix_chart(const char* id, ImVec2 size, const std::vector<std::vector<double>>& values,
                  const std::vector<long long>& col_labels, const char* row_name,
                  const char* col_name, const char* value_name) {
    ImGui::PushID(id);
    const ImVec2 origin = ImGui::GetCursorScreenPos();
    ImGui::InvisibleButton("matrix", size);
    const bool hovered = ImGui::IsItemHovered();
    ImDrawList* draw = ImGui::GetWindowDrawList();
    const float line_h = ImGui::GetTextLineHeight();
    // Row labels on the left (as wide as the widest one), two lines of text below the cells.
    size_t rows = 0;
    for (const auto& col : values) rows = std::max(rows, col.size());
    char label[96];
    std::snprintf(label, sizeof label, "%s %zu", row_name, rows > 0 ? rows - 1 : 0);
    const float label_w = ImGui::CalcTextSize(label).x + 8;
    const ImVec2 p0(origin.x + label_w, origin.y);
    const ImVec2 p1(origin.x + size.x - 6, origin.y + size.y - 2 * line_h - 6);
    draw->AddRectFilled(p0, p1, background());

    double v_max = 0;
    for (const auto& col : values) {
        for (double v : col) v_max = std::max(v_max, v);
    }
    if (values.empty() || rows == 0) {
        draw->AddText(ImVec2(p0.x + 8, p0.y + 8), text(), "no evaluations yet");
        ImGui::PopID();
        return;
    }
    if (v_max <= 0) v_max = 1;
    const float cw = (p1.x - p0.x) / values.size(), ch = (p1.y - p0.y) / rows;
    for (size_t c = 0; c < values.size(); ++c) {
        for (size_t r = 0; r < values[c].size(); ++r) {
            const ImVec2 a(p0.x + c * cw, p0.y + r * ch);
            draw->AddRectFilled(a, ImVec2(a.x + cw, a.y + ch),
                                heat_color(static_cast<float>(values[c][r] / v_max)));
        }
    }
    draw->AddRect(p0, p1, kFrame);
    std::snprintf(label, sizeof label, "%s 0", row_name);
    draw->AddText(ImVec2(origin.x + 2, p0.y), text(), label);
    std::snprintf(label, sizeof label, "%s %zu", row_name, rows - 1);
    draw->AddText(ImVec2(origin.x + 2, p1.y - line_h), text(), label);
    if (col_labels.empty()) {
        std::snprintf(label, sizeof label, "%s 1 .. %zu", col_name, values.size());
    } else {
        std::snprintf(label, sizeof label, "%s at step %lld .. %lld", col_name, col_labels.front(),
                      col_labels.back());
    }
    draw->AddText(ImVec2(p0.x, p1.y + 2), text(), label);
    // The colour scale as a small bar with its ends named.
    const float bar_y = p1.y + line_h + 6;
    std::snprintf(label, sizeof label, "%s 0", value_name);
    draw->AddText(ImVec2(p0.x, bar_y - 1), text(), label);
    const float bar_x = p0.x + ImGui::CalcTextSize(label).x + 6;
    constexpr int kBarSteps = 16;
    for (int i = 0; i < kBarSteps; ++i) {
        draw->AddRectFilled(ImVec2(bar_x + i * 5.0f, bar_y + 2),
                            ImVec2(bar_x + i * 5.0f + 5, bar_y + 10),
                            heat_color(static_cast<float>(i) / (kBarSteps - 1)));
    }
    std::snprintf(label, sizeof label, "%.3f", v_max);
    draw->AddText(ImVec2(bar_x + kBarSteps * 5.0f + 6, bar_y - 1), text(), label);

    if (hovered) {
        const ImVec2 m = ImGui::GetIO().MousePos;
        const int c = static_cast<int>((m.x - p0.x) / cw), r = static_cast<int>((m.y - p0.y) / ch);
        if (c >= 0 && r >= 0 && c < static_cast<int>(values.size()) &&
            r < static_cast<int>(values[c].size())) {
            const long long step = c < static_cast<int>(col_labels.size()) ? col_labels[c] : c;
            ImGui::SetTooltip("%s %lld, %s %d: %s %.4f", col_name, step, row_name, r, value_name,
                              values[c][r]);
        }
    }
    ImGui::PopID();
}

}  // namespace krause::ui
