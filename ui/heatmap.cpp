// Heat map textures from probe weights, and their overlays: window outline, kept keys, hover.
#include "ui/heatmap.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iterator>

namespace krause::ui {

namespace {

struct Stop {
    float t, r, g, b;
};
constexpr Stop kStops[] = {{0.00f, 0, 0, 4},
                           {0.25f, 87, 16, 110},
                           {0.50f, 188, 55, 84},
                           {0.75f, 249, 142, 9},
                           {1.00f, 252, 255, 164}};

void heat_rgb(float t, uint8_t* out) {
    t = std::clamp(t, 0.0f, 1.0f);
    size_t i = 1;
    while (i + 1 < std::size(kStops) && kStops[i].t < t) ++i;
    const Stop& a = kStops[i - 1];
    const Stop& b = kStops[i];
    const float u = (t - a.t) / (b.t - a.t);
    out[0] = static_cast<uint8_t>(a.r + (b.r - a.r) * u);
    out[1] = static_cast<uint8_t>(a.g + (b.g - a.g) * u);
    out[2] = static_cast<uint8_t>(a.b + (b.b - a.b) * u);
}

constexpr uint8_t kUnkeptRgb[3] = {34, 46, 70};  // in the window but dropped by top-K
constexpr ImU32 kWindowLine = IM_COL32(80, 255, 120, 230);
constexpr ImU32 kQueryLine = IM_COL32(0, 255, 255, 255);
constexpr ImU32 kKeptMark = IM_COL32(255, 255, 255, 200);

}  // namespace

const char* to_string(MapScale scale) {
    switch (scale) {
        case MapScale::PerMap:
            return "per-map";
        case MapScale::Shared:
            return "shared";
        case MapScale::Absolute:
            return "absolute";
    }
    return "per-map";
}

ImU32 heat_color(float t) {
    uint8_t rgb[3];
    heat_rgb(t, rgb);
    return IM_COL32(rgb[0], rgb[1], rgb[2], 255);
}

void AttentionMaps::clear() {
    snapshot_.reset();
    maps_.clear();
    window_edges_.clear();
    layers_ = heads_ = 0;
}

void AttentionMaps::update(const std::shared_ptr<const InspectSnapshot>& snapshot,
                           const ProbeTarget& target, const MapStyle& style) {
    if (!snapshot || !snapshot->ready || snapshot->result.queries.empty()) {
        if (!snapshot) clear();
        return;
    }
    if (snapshot == snapshot_ && style == style_ && target.sub_pixel == target_.sub_pixel) return;
    snapshot_ = snapshot;
    target_ = target;
    style_ = style;

    const ProbeResult& result = snapshot->result;
    const ProbedQuery& query = result.queries.front();
    layers_ = static_cast<int>(result.n_layers);
    heads_ = static_cast<int>(result.n_heads);
    height_ = target.pixels.height;
    width_ = target.pixels.width;
    channels_ = target.pixels.channels;
    window_ = result.window;
    const int64_t p = query.position;
    const int64_t lo = std::max<int64_t>(0, p - window_ + 1);
    const int64_t n_pixels = height_ * width_;
    const uint8_t* tokens = target.pixels.tokens.data();

    // Pixels with at least one key in the window [lo, p]; their boundary is the outline.
    std::vector<uint8_t> in_window(n_pixels, 0);
    for (int64_t q = 0; q < n_pixels; ++q) {
        const int64_t first = q * channels_, last = first + channels_ - 1;
        in_window[q] = first <= p && last >= lo;
    }
    window_edges_.clear();
    auto inside = [&](int64_t r, int64_t c) {
        return r >= 0 && c >= 0 && r < height_ && c < width_ && in_window[r * width_ + c];
    };
    for (int64_t r = 0; r < height_; ++r) {
        for (int64_t c = 0; c < width_; ++c) {
            if (!inside(r, c)) continue;
            const float x = static_cast<float>(c), y = static_cast<float>(r);
            if (!inside(r - 1, c)) window_edges_.emplace_back(x, y, x + 1, y);
            if (!inside(r + 1, c)) window_edges_.emplace_back(x, y + 1, x + 1, y + 1);
            if (!inside(r, c - 1)) window_edges_.emplace_back(x, y, x, y + 1);
            if (!inside(r, c + 1)) window_edges_.emplace_back(x + 1, y, x + 1, y + 1);
        }
    }

    maps_.resize(static_cast<size_t>(layers_) * heads_);
    for (int l = 0; l < layers_; ++l) {
        for (int h = 0; h < heads_; ++h) {
            Map& map = maps_[l * heads_ + h];
            const auto& w = query.weights[l][h];
            const auto& kept = query.selected[l][h];
            map.pixel_weight.assign(n_pixels, 0.0f);
            map.pixel_selected.assign(n_pixels, 0);
            for (int64_t j = 0; j <= p && j < static_cast<int64_t>(w.size()); ++j) {
                map.pixel_weight[j / channels_] += w[j];
            }
            for (int32_t j : kept) map.pixel_selected[j / channels_] = 1;
            // Marks only mean something when top-K dropped some keys of the window.
            const bool all_kept = static_cast<int64_t>(kept.size()) >= p - lo + 1;
            map.all_kept = all_kept;

            MapInfo info;
            info.selected = static_cast<int>(kept.size());
            info.sink = w.empty() ? 0.0f : w[0];
            double sum = 0, sum_sq = 0;
            int64_t count = 0;
            for (int64_t q = 0; q < n_pixels; ++q) {
                info.max_weight = std::max(info.max_weight, map.pixel_weight[q]);
                if (in_window[q]) {
                    sum += map.pixel_weight[q];
                    sum_sq += double(map.pixel_weight[q]) * map.pixel_weight[q];
                    ++count;
                }
            }
            if (count > 0) {
                const double mean = sum / count;
                info.spread =
                    static_cast<float>(std::sqrt(std::max(0.0, sum_sq / count - mean * mean)));
            }
            map.info = info;
        }
    }
    shared_max_ = 0;
    for (const Map& map : maps_) shared_max_ = std::max(shared_max_, map.info.max_weight);

    std::vector<uint8_t> rgba(n_pixels * 4);
    for (int l = 0; l < layers_; ++l) {
        for (int h = 0; h < heads_; ++h) {
            Map& map = maps_[l * heads_ + h];
            const bool all_kept = map.all_kept;
            const float top = colour_max(l, h);
            const float scale = top > 0 ? 1.0f / top : 0.0f;
            for (int64_t q = 0; q < n_pixels; ++q) {
                uint8_t* out = rgba.data() + q * 4;
                out[3] = 255;
                const uint8_t grey =
                    channels_ == 3
                        ? static_cast<uint8_t>(
                              (tokens[q * 3] + tokens[q * 3 + 1] + tokens[q * 3 + 2]) / 3)
                        : tokens[q];
                const bool has_key = q * channels_ <= p;
                if (in_window[q] && (all_kept || map.pixel_selected[q])) {
                    heat_rgb(0.06f + 0.94f * std::pow(std::min(1.0f, map.pixel_weight[q] * scale),
                                                      style.gamma),
                             out);
                } else if (in_window[q]) {
                    std::copy(kUnkeptRgb, kUnkeptRgb + 3, out);
                } else {
                    // Outside the window: older keys a little brighter than the future.
                    const float dim = has_key ? 0.30f : 0.14f;
                    const uint8_t v = style.show_image ? static_cast<uint8_t>(grey * dim + 8) : 10;
                    out[0] = out[1] = out[2] = v;
                }
            }
            map.texture.upload(rgba.data(), static_cast<int>(width_), static_cast<int>(height_));
            map.rgba = rgba;
        }
    }
}

float AttentionMaps::colour_max(int layer, int head) const {
    switch (style_.scale) {
        case MapScale::Shared:
            return shared_max_;
        case MapScale::Absolute:
            return 1.0f;
        case MapScale::PerMap:
            break;
    }
    return maps_[layer * heads_ + head].info.max_weight;
}

namespace {

// Copies a w x h RGBA image into canvas (canvas_w wide) at (x0, y0), each pixel scale x scale.
void blit_scaled(const std::vector<uint8_t>& rgba, int64_t w, int64_t h, int scale,
                 std::vector<uint8_t>& canvas, int canvas_w, int x0, int y0) {
    for (int64_t y = 0; y < h * scale; ++y) {
        for (int64_t x = 0; x < w * scale; ++x) {
            const uint8_t* src = &rgba[((y / scale) * w + x / scale) * 4];
            uint8_t* dst = &canvas[((y0 + y) * canvas_w + x0 + x) * 4];
            std::copy(src, src + 4, dst);
        }
    }
}

}  // namespace

std::vector<uint8_t> AttentionMaps::grid_rgba(int scale, int gap, int* width, int* height) const {
    if (!ready() || scale < 1) return {};
    const int cell_w = static_cast<int>(width_) * scale, cell_h = static_cast<int>(height_) * scale;
    *width = heads_ * cell_w + (heads_ - 1) * gap;
    *height = layers_ * cell_h + (layers_ - 1) * gap;
    std::vector<uint8_t> canvas(static_cast<size_t>(*width) * *height * 4, 0);
    for (size_t i = 3; i < canvas.size(); i += 4) canvas[i] = 255;
    for (int l = 0; l < layers_; ++l) {
        for (int h = 0; h < heads_; ++h) {
            blit_scaled(maps_[l * heads_ + h].rgba, width_, height_, scale, canvas, *width,
                        h * (cell_w + gap), l * (cell_h + gap));
        }
    }
    return canvas;
}

std::vector<uint8_t> AttentionMaps::map_rgba(int layer, int head, int scale, int* width,
                                             int* height) const {
    if (!ready() || scale < 1 || layer < 0 || head < 0 || layer >= layers_ || head >= heads_) {
        return {};
    }
    *width = static_cast<int>(width_) * scale;
    *height = static_cast<int>(height_) * scale;
    std::vector<uint8_t> canvas(static_cast<size_t>(*width) * *height * 4);
    blit_scaled(maps_[layer * heads_ + head].rgba, width_, height_, scale, canvas, *width, 0, 0);
    return canvas;
}

void AttentionMaps::draw_overlay(ImDrawList* draw, ImVec2 origin, float scale, const Map& map,
                                 bool details) const {
    if (style_.show_window) {
        const float thickness = details ? 2.0f : 1.0f;
        for (const ImVec4& e : window_edges_) {
            draw->AddLine(ImVec2(origin.x + e.x * scale, origin.y + e.y * scale),
                          ImVec2(origin.x + e.z * scale, origin.y + e.w * scale), kWindowLine,
                          thickness);
        }
    }
    if (details && style_.show_selected && !map.all_kept) {
        const float r = std::max(1.0f, scale * 0.12f);
        for (int64_t q = 0; q < height_ * width_; ++q) {
            if (!map.pixel_selected[q]) continue;
            const ImVec2 c(origin.x + ((q % width_) + 0.5f) * scale,
                           origin.y + ((q / width_) + 0.5f) * scale);
            draw->AddRectFilled(ImVec2(c.x - r, c.y - r), ImVec2(c.x + r, c.y + r), kKeptMark);
        }
    }
    const int64_t qp = target_.sub_pixel / channels_;
    const ImVec2 q0(origin.x + (qp % width_) * scale, origin.y + (qp / width_) * scale);
    draw->AddRect(q0, ImVec2(q0.x + scale, q0.y + scale), kQueryLine, 0.0f, 0,
                  details ? 2.0f : 1.0f);
}

void AttentionMaps::draw_tooltip(const Map& map, int layer, int head, int row, int col) const {
    const ProbedQuery& query = snapshot_->result.queries.front();
    const auto& w = query.weights[layer][head];
    const auto& kept = query.selected[layer][head];
    const int64_t p = query.position;
    const int64_t lo = std::max<int64_t>(0, p - window_ + 1);
    const int64_t q = static_cast<int64_t>(row) * width_ + col;
    ImGui::BeginTooltip();
    ImGui::Text("layer %d head %d, pixel row %d col %d: weight %.5f", layer, head, row, col,
                map.pixel_weight[q]);
    for (int64_t ch = 0; ch < channels_; ++ch) {
        const int64_t j = q * channels_ + ch;
        if (j > p) {
            ImGui::TextDisabled("key %lld (row %d, col %d, ch %lld): after the query",
                                static_cast<long long>(j), row, col, static_cast<long long>(ch));
            continue;
        }
        const bool is_kept = std::binary_search(kept.begin(), kept.end(), static_cast<int32_t>(j));
        const char* where = j < lo ? "outside the window" : is_kept ? "kept" : "dropped by top-K";
        ImGui::Text("key %lld (row %d, col %d, ch %lld): %.5f  %s", static_cast<long long>(j), row,
                    col, static_cast<long long>(ch),
                    j < static_cast<int64_t>(w.size()) ? w[j] : 0.0f, where);
    }
    ImGui::TextDisabled("colour scale: 0 .. %.4f (%s)", colour_max(layer, head),
                        style_.scale == MapScale::PerMap   ? "this map's largest pixel"
                        : style_.scale == MapScale::Shared ? "the grid's largest pixel"
                                                           : "weight 1");
    ImGui::EndTooltip();
}

void AttentionMaps::draw_map(const char* id, int layer, int head, float scale, bool details,
                             ImVec4* rect) const {
    if (!ready() || layer < 0 || head < 0 || layer >= layers_ || head >= heads_) return;
    const Map& map = maps_[layer * heads_ + head];
    const ImVec2 size = map_size(scale);
    const ImVec2 origin = ImGui::GetCursorScreenPos();
    ImGui::InvisibleButton(id, size);
    if (rect) *rect = ImVec4(origin.x, origin.y, size.x, size.y);
    ImDrawList* draw = ImGui::GetWindowDrawList();
    draw->AddImage(map.texture.id(), origin, ImVec2(origin.x + size.x, origin.y + size.y));
    draw_overlay(draw, origin, scale, map, details);
    if (details && ImGui::IsItemHovered()) {
        const ImVec2 m = ImGui::GetIO().MousePos;
        const int col = std::clamp(static_cast<int>((m.x - origin.x) / scale), 0, int(width_) - 1);
        const int row = std::clamp(static_cast<int>((m.y - origin.y) / scale), 0, int(height_) - 1);
        draw_tooltip(map, layer, head, row, col);
    }
}

bool AttentionMaps::draw_grid(const char* id, float scale, int* layer, int* head,
                              ImVec4* rect) const {
    if (!ready()) return false;
    ImGui::PushID(id);
    bool clicked = false;
    const ImVec2 start = ImGui::GetCursorScreenPos();
    const ImVec2 size = map_size(scale);
    const float line_h = ImGui::GetTextLineHeightWithSpacing();
    const float label_w = ImGui::CalcTextSize("L00 ").x;
    ImDrawList* draw = ImGui::GetWindowDrawList();
    const ImU32 text = ImGui::GetColorU32(ImGuiCol_Text);
    char label[32];
    // Narrow maps (CIFAR-10 at scale 1) leave no room for "head 3": the number alone then.
    const bool narrow = ImGui::CalcTextSize("head 00").x > size.x + kMapGap;
    for (int h = 0; h < heads_; ++h) {
        std::snprintf(label, sizeof label, narrow ? "%d" : "head %d", h);
        draw->AddText(ImVec2(start.x + label_w + h * (size.x + kMapGap), start.y), text, label);
    }
    for (int l = 0; l < layers_; ++l) {
        const float y = start.y + line_h + l * (size.y + kMapGap);
        std::snprintf(label, sizeof label, "L%d", l);
        draw->AddText(ImVec2(start.x, y), text, label);
        for (int h = 0; h < heads_; ++h) {
            const ImVec2 p0(start.x + label_w + h * (size.x + kMapGap), y);
            ImGui::SetCursorScreenPos(p0);
            ImGui::PushID(l * heads_ + h);
            draw_map("map", l, h, scale, false);
            if (ImGui::IsItemHovered()) {
                const MapInfo& in = info(l, h);
                ImGui::SetTooltip(
                    "layer %d head %d: largest pixel %.4f, sink %.4f, %d keys kept\n"
                    "click to enlarge",
                    l, h, in.max_weight, in.sink, in.selected);
            }
            if (ImGui::IsItemClicked()) {
                *layer = l;
                *head = h;
                clicked = true;
            }
            if (*layer == l && *head == h) {
                draw->AddRect(ImVec2(p0.x - 2, p0.y - 2),
                              ImVec2(p0.x + size.x + 2, p0.y + size.y + 2),
                              IM_COL32(255, 255, 255, 255), 0.0f, 0, 2.0f);
            }
            ImGui::PopID();
        }
    }
    const ImVec2 total(label_w + heads_ * (size.x + kMapGap),
                       line_h + layers_ * (size.y + kMapGap));
    ImGui::SetCursorScreenPos(start);
    ImGui::Dummy(total);
    if (rect)
        *rect = ImVec4(start.x + label_w, start.y + line_h, total.x - label_w, total.y - line_h);
    ImGui::PopID();
    return clicked;
}

}  // namespace krause::ui
