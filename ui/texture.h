// RGBA textures on the GPU, owned by the UI thread, plus reading the framebuffer back.
#pragma once

#include <imgui.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace krause::ui {

// One GL texture with nearest-neighbour sampling, so that image pixels stay crisp when enlarged.
// Move-only; deletes itself. Created lazily by the first upload, so a default Texture needs no GL.
class Texture {
public:
    Texture() = default;
    ~Texture();
    Texture(Texture&& other) noexcept;
    Texture& operator=(Texture&& other) noexcept;
    Texture(const Texture&) = delete;
    Texture& operator=(const Texture&) = delete;

    // rgba holds width * height * 4 bytes; a new size reallocates, the same size updates in place.
    void upload(const uint8_t* rgba, int width, int height);
    bool valid() const { return id_ != 0; }
    ImTextureID id() const;
    int width() const { return width_; }
    int height() const { return height_; }

private:
    void release();

    unsigned id_ = 0;
    int width_ = 0;
    int height_ = 0;
};

// The current back buffer as top-down RGBA rows (GL reads bottom-up).
std::vector<uint8_t> read_framebuffer(int width, int height);
// Writes the back buffer as a PNG; returns false when the file cannot be written.
bool write_framebuffer_png(const std::string& path, int width, int height);

// What became of a region capture: `done` once the frame was rendered, `error` when it failed.
struct CaptureResult {
    bool done = false;
    std::string error;
};
// Saves the screen rectangle (x, y, w, h) of what the current window drew so far as a PNG, at the
// moment the renderer reaches this point of the draw list (so the region is fully drawn, and the
// main loop needs no hook). The result fills in during rendering.
std::shared_ptr<CaptureResult> capture_region_png(const std::string& path, const ImVec4& rect);
// Writes RGBA pixels as a PNG through a temporary file; false with a message naming the path.
bool write_rgba_png(const std::string& path, const uint8_t* rgba, int width, int height,
                    std::string* error);

}  // namespace krause::ui
