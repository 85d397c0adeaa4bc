// Training curves as TensorBoard users know them: smoothed loss with the raw line faint behind it,
// a log axis, test BPD over T or T-1 sub-pixels, other runs' metrics.jsonl overlaid, and export of
// the chart as PNG and CSV. Shared by the Train panel (live run) and the Model panel.
#include "ui/actions.h"
#include "ui/panels.h"

#include <imgui.h>
#include <imgui_stdlib.h>

#include <algorithm>
#include <iterator>

namespace krause::ui {

namespace {

// The live run keeps the panel's colours; overlaid runs take the next pair each.
constexpr ImU32 kRunColors[][2] = {
    {IM_COL32(240, 110, 110, 255), IM_COL32(250, 170, 170, 255)},
    {IM_COL32(180, 140, 255, 255), IM_COL32(215, 195, 255, 255)},
    {IM_COL32(90, 220, 200, 255), IM_COL32(170, 240, 230, 255)},
    {IM_COL32(230, 220, 90, 255), IM_COL32(245, 240, 170, 255)},
};

ImU32 faded(ImU32 color) {
    return (color & 0x00FFFFFFu) | (70u << IM_COL32_A_SHIFT);
}

void add_curve(std::vector<PlotSeries>& out, std::vector<CsvSeries>* csv, const std::string& label,
               const std::vector<TrainPoint>& points, ImU32 color, double smoothing, bool markers) {
    PlotSeries raw{label, {}, {}, color, markers};
    for (const auto& p : points) {
        raw.x.push_back(static_cast<double>(p.step));
        raw.y.push_back(p.value);
    }
    if (csv) csv->push_back({label, raw.x, raw.y});
    if (smoothing > 0 && raw.y.size() > 1) {
        PlotSeries smooth = raw;
        smooth.y = smooth_ema(raw.y, smoothing);
        smooth.label = label + " (smoothed)";
        if (csv) csv->push_back({smooth.label, smooth.x, smooth.y});
        raw.label.clear();
        raw.color = faded(color);
        out.push_back(std::move(raw));
        out.push_back(std::move(smooth));
    } else {
        out.push_back(std::move(raw));
    }
}

const std::vector<TrainPoint>& test_points(const RunCurves& run, const CurveView& view) {
    return view.test_predicted ? run.test_pred : run.test_all;
}

}  // namespace

void curve_view_controls(CurveView& view) {
    ImGui::SetNextItemWidth(140);
    ImGui::SliderFloat("smoothing", &view.smoothing, 0.0f, 0.99f, "%.2f");
    ImGui::SameLine();
    ImGui::Checkbox("log scale", &view.log_y);
    ImGui::SameLine(0, 24);
    int dims = view.test_predicted ? 1 : 0;
    ImGui::TextUnformatted("test BPD over");
    ImGui::SameLine();
    ImGui::RadioButton("all T", &dims, 0);
    ImGui::SameLine();
    ImGui::RadioButton("T-1 predicted", &dims, 1);
    if (ImGui::IsItemHovered()) {
        ImGui::SetTooltip(
            "the paper's figure: the first sub-pixel, drawn from the prior, left out");
    }
    view.test_predicted = dims == 1;
}

std::vector<CsvSeries> training_chart(const char* id, ImVec2 size, const TrainSnapshot* live,
                                      const std::vector<RunCurves>& runs, const CurveView& view,
                                      ImVec4* rect) {
    std::vector<PlotSeries> series;
    std::vector<CsvSeries> csv;
    const char* test_name = view.test_predicted ? "test BPD (T-1)" : "test BPD (T)";
    if (live) {
        RunCurves now;
        now.loss = live->loss_curve;
        now.test_all = live->test_curve;
        now.test_pred = live->test_curve_pred;
        add_curve(series, &csv, "train loss", now.loss, kColorPixel, view.smoothing, false);
        add_curve(series, &csv, test_name, test_points(now, view), kColorImage, 0, true);
    }
    for (size_t i = 0; i < runs.size(); ++i) {
        const auto& colors = kRunColors[i % std::size(kRunColors)];
        // Without a live run, a single run keeps the usual colours.
        const bool alone = !live && runs.size() == 1;
        const std::string prefix = alone ? "" : runs[i].name + " ";
        add_curve(series, &csv, prefix + "train loss", runs[i].loss,
                  alone ? kColorPixel : colors[0], view.smoothing, false);
        add_curve(series, &csv, prefix + test_name, test_points(runs[i], view),
                  alone ? kColorImage : colors[1], 0, true);
    }
    PlotOptions options;
    options.title = view.log_y ? "bits per sub-pixel (log scale)" : "bits per sub-pixel";
    options.x_label = "step";
    options.integer_x = true;
    options.log_y = view.log_y;
    const ImVec2 origin = ImGui::GetCursorScreenPos();
    line_chart(id, size, series, options);
    if (rect) *rect = ImVec4(origin.x, origin.y, size.x, size.y);
    return csv;
}

bool add_run_curves(StudioState& state, const std::string& path, std::string* error) {
    TrainState& t = state.train;
    try {
        RunCurves run = read_run_curves(path);
        t.runs.erase(std::remove_if(t.runs.begin(), t.runs.end(),
                                    [&](const RunCurves& r) { return r.path == run.path; }),
                     t.runs.end());
        t.runs.push_back(std::move(run));
        t.runs_message.clear();
        return true;
    } catch (const std::exception& e) {
        *error = e.what();
        return false;
    }
}

void request_chart_export(StudioState& state, const std::string& base) {
    ChartExport& e = state.train.chart_export;
    e.base = base;
    e.requested = true;
    e.png.reset();
    e.message.clear();
}

void run_overlay_controls(StudioState& state) {
    TrainState& t = state.train;
    ImGui::SetNextItemWidth(320);
    const bool enter = ImGui::InputTextWithHint("##run", "a run folder or its metrics.jsonl",
                                                &t.run_path, ImGuiInputTextFlags_EnterReturnsTrue);
    ImGui::SameLine();
    if ((ImGui::Button("Add run") || enter) && !t.run_path.empty()) {
        std::string error;
        if (!add_run_curves(state, t.run_path, &error)) t.runs_message = error;
    }
    for (size_t i = 0; i < t.runs.size(); ++i) {
        ImGui::PushID(static_cast<int>(i));
        if (i > 0) ImGui::SameLine();
        const RunCurves& run = t.runs[i];
        const std::vector<TrainPoint>& test = test_points(run, t.view);
        std::string text = run.name;
        if (!test.empty()) {
            char final_bpd[48];
            std::snprintf(final_bpd, sizeof final_bpd, " (test %.4f)", test.back().value);
            text += final_bpd;
        }
        ImGui::TextUnformatted(text.c_str());
        if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s", run.path.c_str());
        ImGui::SameLine(0, 2);
        if (ImGui::SmallButton("x")) {
            t.runs.erase(t.runs.begin() + static_cast<long>(i));
            ImGui::PopID();
            break;
        }
        ImGui::PopID();
    }
    show_error(t.runs_message);
}

void chart_export_controls(StudioState& state, const std::vector<CsvSeries>& csv,
                           const ImVec4& chart_rect) {
    ChartExport& e = state.train.chart_export;
    ImGui::SetNextItemWidth(260);
    ImGui::InputTextWithHint("##export", "file name without extension", &e.base);
    ImGui::SameLine();
    if (ImGui::Button("Export PNG + CSV") && !e.base.empty()) request_chart_export(state, e.base);
    // The CSV is written now; the PNG when the renderer reaches the chart in this frame.
    if (e.requested) {
        e.requested = false;
        std::string error;
        if (csv.empty()) {
            e.message = "nothing to export yet";
        } else if (!write_series_csv(e.base + ".csv", csv, &error)) {
            e.message = error;
        } else {
            e.png = capture_region_png(e.base + ".png", chart_rect);
            e.message = "saving " + e.base + ".png and " + e.base + ".csv";
        }
    }
    if (e.png && e.png->done) {
        e.message =
            e.png->error.empty() ? "saved " + e.base + ".png and " + e.base + ".csv" : e.png->error;
    }
    if (!e.message.empty()) {
        ImGui::SameLine();
        if (e.png && e.png->done && !e.png->error.empty()) {
            show_error(e.message);
        } else {
            ImGui::TextDisabled("%s", e.message.c_str());
        }
    }
}

}  // namespace krause::ui
