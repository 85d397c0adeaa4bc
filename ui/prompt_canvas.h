// A prompt the user draws: an image of the model's shape painted with a round brush (or eraser),
// cleared, or loaded from a PNG file; the Complete panel keeps its top rows as the prompt.
#pragma once

#include "training/engine.h"
#include "ui/texture.h"

#include <imgui.h>

#include <string>

namespace krause::ui {

class PromptCanvas {
public:
    // Starts a blank (black) canvas when the shape differs from the current one.
    void reshape(int64_t height, int64_t width, int64_t channels);
    void clear();
    // Paints a disk of the brush's radius at (row, col), or a line of them from (r0, c0).
    void paint(int row, int col);
    void paint_line(int r0, int c0, int r1, int c1);
    // Loads a PNG of the canvas's shape; false with the reader's message when it cannot.
    bool load_png(const std::string& path, std::string* error);

    // The canvas `scale` screen pixels per image pixel; dragging the mouse over it paints. A line
    // marks where the prompt (the first `prompt_rows` rows) ends. Returns the drawn rectangle.
    ImVec4 draw(const char* id, float scale, int prompt_rows);

    const Images& image() const { return image_; }
    bool empty() const { return image_.count == 0; }
    int64_t painted_pixels() const;  // pixels that are not black, for tests

    int radius = 1;               // brush radius in image pixels (0: one pixel)
    bool eraser = false;          // paint black
    float colour[3] = {1, 1, 1};  // the brush (grey images take the mean)

private:
    void set_pixel(int row, int col);

    Images image_;
    Texture texture_;
    bool dirty_ = true;
    bool dragging_ = false;
    int last_row_ = 0, last_col_ = 0;
};

}  // namespace krause::ui
