// Attention heat maps: for one probed sub-pixel, the weight every layer and head puts on each
// earlier pixel, drawn over the image with the causal window outlined and the kept keys marked.
#pragma once

#include "training/engine.h"
#include "ui/texture.h"

#include <imgui.h>

#include <memory>
#include <string>
#include <vector>

namespace krause::ui {

// Space between maps in a grid, in screen pixels.
constexpr float kMapGap = 6.0f;

// A colour for t in [0, 1] on a dark-to-bright scale (black, purple, orange, pale yellow).
ImU32 heat_color(float t);

// The image and sub-pixel a probe explains. The probe's query is position sub_pixel - 1, whose
// keys are the sub-pixels 0 .. sub_pixel - 1.
struct ProbeTarget {
    std::string source;  // sample | complete | data | preview | compare
    int image = 0, row = 0, col = 0, channel = 0;
    Images pixels;  // the one image (count 1)
    int64_t sub_pixel = 0;
    int64_t position() const { return sub_pixel - 1; }
};

// What a map's brightest colour stands for: its own largest pixel weight, the largest of the
// whole grid (maps become comparable; a near-uniform map stays dark), or weight 1.
enum class MapScale { PerMap, Shared, Absolute };
const char* to_string(MapScale scale);

struct MapStyle {
    float gamma = 0.5f;  // colour = (weight / max)^gamma; < 1 brings out small weights
    MapScale scale = MapScale::PerMap;
    bool show_image = true;   // draw the image faintly where there is no weight
    bool show_window = true;  // outline the keys inside the causal window
    bool show_selected = true;
    bool operator==(const MapStyle& o) const {
        return gamma == o.gamma && scale == o.scale && show_image == o.show_image &&
               show_window == o.show_window && show_selected == o.show_selected;
    }
    bool operator!=(const MapStyle& o) const { return !(*this == o); }
};

// What a map holds, for the state dump and the tests.
struct MapInfo {
    float max_weight = 0;  // largest weight on one pixel (channels summed)
    float sink = 0;        // weight on key 0
    int selected = 0;      // keys kept (Krause top-K), or every key for softmax and linear
    float spread = 0;      // standard deviation of the pixel weights inside the window
};

class AttentionMaps {
public:
    // Rebuilds the textures when the snapshot, target or style changed since the last call.
    void update(const std::shared_ptr<const InspectSnapshot>& snapshot, const ProbeTarget& target,
                const MapStyle& style);
    void clear();
    bool ready() const { return !maps_.empty(); }
    int layers() const { return layers_; }
    int heads() const { return heads_; }
    const ProbeResult* result() const { return snapshot_ ? &snapshot_->result : nullptr; }
    const MapInfo& info(int layer, int head) const { return maps_[layer * heads_ + head].info; }
    int64_t window() const { return window_; }
    // The weight the brightest colour stands for in map (layer, head) under the current style.
    float colour_max(int layer, int head) const;

    // The maps as RGBA pixels for a PNG: the grid (layers as rows, heads as columns, `gap`
    // pixels apart) or one map, each image pixel `scale` x `scale`. Empty when not ready.
    std::vector<uint8_t> grid_rgba(int scale, int gap, int* width, int* height) const;
    std::vector<uint8_t> map_rgba(int layer, int head, int scale, int* width, int* height) const;

    // All maps, layers as rows and heads as columns, each image pixel `scale` screen pixels.
    // A click on a map selects it (returns true); the selected one is framed.
    bool draw_grid(const char* id, float scale, int* layer, int* head,
                   ImVec4* rect = nullptr) const;
    // One map; `details` adds the kept-key marks and the hover read-out of every key.
    void draw_map(const char* id, int layer, int head, float scale, bool details,
                  ImVec4* rect = nullptr) const;
    ImVec2 map_size(float scale) const { return ImVec2(width_ * scale, height_ * scale); }

private:
    struct Map {
        Texture texture;
        std::vector<uint8_t> rgba;        // what the texture holds, kept for PNG export
        std::vector<float> pixel_weight;  // per pixel, channels summed
        std::vector<uint8_t> pixel_selected;
        bool all_kept = true;  // nothing of the window was dropped: no marks needed
        MapInfo info;
    };
    void draw_overlay(ImDrawList* draw, ImVec2 origin, float scale, const Map& map,
                      bool details) const;
    void draw_tooltip(const Map& map, int layer, int head, int row, int col) const;

    std::shared_ptr<const InspectSnapshot> snapshot_;
    ProbeTarget target_;
    MapStyle style_;
    int layers_ = 0, heads_ = 0;
    int64_t height_ = 0, width_ = 0, channels_ = 0, window_ = 0;
    std::vector<Map> maps_;
    float shared_max_ = 0;  // the largest pixel weight of any map
    // The window's outline as unit-pixel segments (x0, y0, x1, y1), computed once per target.
    std::vector<ImVec4> window_edges_;
};

}  // namespace krause::ui
