// The drawing canvas: token edits on the UI thread, re-uploaded as one small texture when changed.
#include "ui/prompt_canvas.h"

#include "training/png_image.h"

#include <algorithm>
#include <cmath>

namespace krause::ui {

void PromptCanvas::reshape(int64_t height, int64_t width, int64_t channels) {
    if (image_.count == 1 && image_.height == height && image_.width == width &&
        image_.channels == channels) {
        return;
    }
    image_ = Images();
    image_.count = 1;
    image_.height = height;
    image_.width = width;
    image_.channels = channels;
    image_.tokens.assign(static_cast<size_t>(height * width * channels), 0);
    image_.filled = image_.seq_len();
    dirty_ = true;
}

void PromptCanvas::clear() {
    std::fill(image_.tokens.begin(), image_.tokens.end(), 0);
    dirty_ = true;
}

void PromptCanvas::set_pixel(int row, int col) {
    if (row < 0 || col < 0 || row >= image_.height || col >= image_.width) return;
    const int64_t c = image_.channels;
    uint8_t* p = &image_.tokens[static_cast<size_t>((row * image_.width + col) * c)];
    auto level = [&](float v) {
        return eraser ? uint8_t(0)
                      : static_cast<uint8_t>(std::lround(std::clamp(v, 0.0f, 1.0f) * 255));
    };
    if (c == 1) {
        p[0] = level((colour[0] + colour[1] + colour[2]) / 3);
    } else {
        for (int64_t ch = 0; ch < c; ++ch) p[ch] = level(colour[std::min<int64_t>(ch, 2)]);
    }
    dirty_ = true;
}

void PromptCanvas::paint(int row, int col) {
    const int r = std::max(0, radius);
    for (int dr = -r; dr <= r; ++dr) {
        for (int dc = -r; dc <= r; ++dc) {
            if (dr * dr + dc * dc <= r * r + r) set_pixel(row + dr, col + dc);
        }
    }
}

void PromptCanvas::paint_line(int r0, int c0, int r1, int c1) {
    const int steps = std::max(std::abs(r1 - r0), std::abs(c1 - c0));
    for (int i = 0; i <= steps; ++i) {
        const float t = steps == 0 ? 0.0f : static_cast<float>(i) / steps;
        paint(static_cast<int>(std::lround(r0 + (r1 - r0) * t)),
              static_cast<int>(std::lround(c0 + (c1 - c0) * t)));
    }
}

bool PromptCanvas::load_png(const std::string& path, std::string* error) {
    try {
        image_.tokens = read_png_tokens(path, image_.height, image_.width, image_.channels);
    } catch (const ImageFileError& e) {
        *error = std::string(e.what()) + (e.hint.empty() ? "" : " (" + e.hint + ")");
        return false;
    }
    dirty_ = true;
    return true;
}

int64_t PromptCanvas::painted_pixels() const {
    int64_t n = 0;
    for (int64_t q = 0; q < image_.height * image_.width; ++q) {
        bool lit = false;
        for (int64_t ch = 0; ch < image_.channels; ++ch)
            lit |= image_.tokens[q * image_.channels + ch] > 0;
        n += lit;
    }
    return n;
}

ImVec4 PromptCanvas::draw(const char* id, float scale, int prompt_rows) {
    if (empty()) return ImVec4();
    if (dirty_) {
        const auto rgba = image_rgba(image_, 0);
        texture_.upload(rgba.data(), static_cast<int>(image_.width),
                        static_cast<int>(image_.height));
        dirty_ = false;
    }
    const ImVec2 size(image_.width * scale, image_.height * scale);
    const ImVec2 origin = ImGui::GetCursorScreenPos();
    ImGui::InvisibleButton(id, size);
    ImDrawList* draw = ImGui::GetWindowDrawList();
    draw->AddImage(texture_.id(), origin, ImVec2(origin.x + size.x, origin.y + size.y));
    draw->AddRect(ImVec2(origin.x - 1, origin.y - 1),
                  ImVec2(origin.x + size.x + 1, origin.y + size.y + 1),
                  IM_COL32(120, 120, 140, 255));
    // The prompt ends here: the model completes everything below the line.
    const float y = origin.y + prompt_rows * scale;
    draw->AddLine(ImVec2(origin.x - 6, y), ImVec2(origin.x + size.x + 6, y),
                  IM_COL32(0, 255, 255, 255), 2.0f);

    const ImVec2 m = ImGui::GetIO().MousePos;
    const int row = static_cast<int>(std::floor((m.y - origin.y) / scale));
    const int col = static_cast<int>(std::floor((m.x - origin.x) / scale));
    if (ImGui::IsItemActive() && ImGui::IsMouseDown(ImGuiMouseButton_Left)) {
        if (dragging_) {
            paint_line(last_row_, last_col_, row, col);
        } else {
            paint(row, col);
        }
        dragging_ = true;
        last_row_ = row;
        last_col_ = col;
    } else {
        dragging_ = false;
    }
    if (ImGui::IsItemHovered()) {
        const float r = (std::max(0, radius) + 0.5f) * scale;
        draw->AddCircle(ImVec2(origin.x + (col + 0.5f) * scale, origin.y + (row + 0.5f) * scale), r,
                        IM_COL32(255, 255, 255, 160));
    }
    return ImVec4(origin.x, origin.y, size.x, size.y);
}

}  // namespace krause::ui
