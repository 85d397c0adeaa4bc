// A grid of token images shown as textures; reports the pixel under the mouse and clicks on it.
#pragma once

#include "training/engine.h"
#include "ui/texture.h"

#include <imgui.h>

#include <vector>

namespace krause::ui {

// A pixel of one image of a grid: image index, row and column.
struct PixelRef {
    int image = -1;
    int row = 0;
    int col = 0;
    bool valid() const { return image >= 0; }
};

class ImageGrid {
public:
    // Uploads every image of `images` (cheap for the sizes here: a few KiB each).
    void set(const Images& images);
    void clear();
    bool empty() const { return textures_.empty(); }
    int count() const { return static_cast<int>(textures_.size()); }
    const Images& images() const { return images_; }

    // Draws the images `columns` per row, each image pixel `scale` screen pixels wide. Hovering
    // shows the pixel's value; a left click returns true with the pixel in `clicked`. `mark`
    // outlines one pixel (the one being inspected). The drawn rectangle goes to `rect` if given.
    bool draw(const char* id, float scale, int columns, PixelRef* clicked,
              PixelRef mark = PixelRef(), ImVec4* rect = nullptr) const;
    // The size draw() takes for these arguments.
    ImVec2 size(float scale, int columns) const;

private:
    Images images_;
    std::vector<Texture> textures_;
};

// Screen size of a grid cell gap, shared so that panels can budget space.
constexpr float kGridGap = 4.0f;

// The largest per-pixel scale at which `count` images of width x height fit `avail` in
// `columns` columns (at least 1).
float fit_scale(ImVec2 avail, int count, int columns, int64_t height, int64_t width);

}  // namespace krause::ui
