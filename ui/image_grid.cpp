// ImageGrid: textures for token images and the arithmetic from mouse position to pixel.
#include "ui/image_grid.h"

#include <algorithm>
#include <cmath>

namespace krause::ui {

void ImageGrid::set(const Images& images) {
    images_ = images;
    textures_.resize(static_cast<size_t>(images.count));
    for (int64_t i = 0; i < images.count; ++i) {
        const auto rgba = image_rgba(images, i);
        textures_[i].upload(rgba.data(), static_cast<int>(images.width),
                            static_cast<int>(images.height));
    }
}

void ImageGrid::clear() {
    images_ = Images();
    textures_.clear();
}

ImVec2 ImageGrid::size(float scale, int columns) const {
    const int n = count();
    if (n == 0) return ImVec2(0, 0);
    columns = std::max(1, std::min(columns, n));
    const int rows = (n + columns - 1) / columns;
    const float cell_w = images_.width * scale, cell_h = images_.height * scale;
    return ImVec2(columns * cell_w + (columns - 1) * kGridGap,
                  rows * cell_h + (rows - 1) * kGridGap);
}

bool ImageGrid::draw(const char* id, float scale, int columns, PixelRef* clicked, PixelRef mark,
                     ImVec4* rect) const {
    const int n = count();
    if (n == 0) return false;
    columns = std::max(1, std::min(columns, n));
    const ImVec2 total = size(scale, columns);
    const ImVec2 origin = ImGui::GetCursorScreenPos();
    ImGui::InvisibleButton(id, total);
    const bool hovered = ImGui::IsItemHovered();
    const bool pressed = ImGui::IsItemClicked(ImGuiMouseButton_Left);
    if (rect) *rect = ImVec4(origin.x, origin.y, total.x, total.y);

    ImDrawList* draw = ImGui::GetWindowDrawList();
    const float cell_w = images_.width * scale, cell_h = images_.height * scale;
    for (int i = 0; i < n; ++i) {
        const ImVec2 p0(origin.x + (i % columns) * (cell_w + kGridGap),
                        origin.y + (i / columns) * (cell_h + kGridGap));
        const ImVec2 p1(p0.x + cell_w, p0.y + cell_h);
        draw->AddImage(textures_[i].id(), p0, p1);
        if (mark.image == i) {
            const ImVec2 m0(p0.x + mark.col * scale, p0.y + mark.row * scale);
            draw->AddRect(ImVec2(m0.x - 1, m0.y - 1), ImVec2(m0.x + scale + 1, m0.y + scale + 1),
                          IM_COL32(0, 255, 255, 255), 0.0f, 0, 2.0f);
        }
    }
    if (!hovered) return false;

    // Map the mouse to a cell, then to a pixel inside it; the gaps belong to no image.
    const ImVec2 mouse = ImGui::GetIO().MousePos;
    const float fx = mouse.x - origin.x, fy = mouse.y - origin.y;
    const int cx = static_cast<int>(fx / (cell_w + kGridGap));
    const int cy = static_cast<int>(fy / (cell_h + kGridGap));
    const float ix = fx - cx * (cell_w + kGridGap), iy = fy - cy * (cell_h + kGridGap);
    const int image = cy * columns + cx;
    if (cx >= columns || image >= n || ix >= cell_w || iy >= cell_h || ix < 0 || iy < 0) {
        return false;
    }
    PixelRef at{image, static_cast<int>(iy / scale), static_cast<int>(ix / scale)};
    at.row = std::min<int>(at.row, static_cast<int>(images_.height) - 1);
    at.col = std::min<int>(at.col, static_cast<int>(images_.width) - 1);

    const int64_t base = (static_cast<int64_t>(at.row) * images_.width + at.col) * images_.channels;
    const uint8_t* tokens = images_.tokens.data() + image * images_.seq_len();
    ImGui::BeginTooltip();
    ImGui::Text("image %d, row %d, col %d", at.image, at.row, at.col);
    if (base >= images_.filled) {
        ImGui::TextDisabled("not generated yet");
    } else if (images_.channels == 3) {
        ImGui::Text("RGB %d %d %d", tokens[base], tokens[base + 1], tokens[base + 2]);
    } else {
        ImGui::Text("value %d", tokens[base]);
    }
    ImGui::TextDisabled("click to inspect its attention");
    ImGui::EndTooltip();

    if (pressed && clicked) {
        *clicked = at;
        return true;
    }
    return false;
}

float fit_scale(ImVec2 avail, int count, int columns, int64_t height, int64_t width) {
    if (count <= 0 || height <= 0 || width <= 0) return 1.0f;
    columns = std::max(1, std::min(columns, count));
    const int rows = (count + columns - 1) / columns;
    const float sx = (avail.x - (columns - 1) * kGridGap) / (columns * width);
    const float sy = (avail.y - (rows - 1) * kGridGap) / (rows * height);
    return std::max(1.0f, std::floor(std::min(sx, sy)));
}

}  // namespace krause::ui
