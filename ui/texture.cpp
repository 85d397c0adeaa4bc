// GL texture handling and framebuffer capture. Only GL 1.1 entry points are used, which every
// libGL exports directly, so no loader is needed beside the one inside the ImGui backend.
#include "ui/texture.h"

#include <GL/gl.h>
#include <stb_image_write.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <utility>

namespace krause::ui {

Texture::~Texture() {
    release();
}

Texture::Texture(Texture&& other) noexcept
    : id_(std::exchange(other.id_, 0u)),
      width_(std::exchange(other.width_, 0)),
      height_(std::exchange(other.height_, 0)) {}

Texture& Texture::operator=(Texture&& other) noexcept {
    if (this != &other) {
        release();
        id_ = std::exchange(other.id_, 0u);
        width_ = std::exchange(other.width_, 0);
        height_ = std::exchange(other.height_, 0);
    }
    return *this;
}

void Texture::release() {
    if (id_ != 0) {
        GLuint id = id_;
        glDeleteTextures(1, &id);
    }
    id_ = 0;
    width_ = height_ = 0;
}

void Texture::upload(const uint8_t* rgba, int width, int height) {
    if (width <= 0 || height <= 0) return;
    GLint previous = 0;
    glGetIntegerv(GL_TEXTURE_BINDING_2D, &previous);
    if (id_ == 0) {
        GLuint id = 0;
        glGenTextures(1, &id);
        id_ = id;
    }
    glBindTexture(GL_TEXTURE_2D, id_);
    glPixelStorei(GL_UNPACK_ALIGNMENT, 1);
    glPixelStorei(GL_UNPACK_ROW_LENGTH, 0);
    if (width != width_ || height != height_) {
        glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_NEAREST);
        glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_NEAREST);
        glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_S, GL_CLAMP_TO_EDGE);
        glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_T, GL_CLAMP_TO_EDGE);
        glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA, width, height, 0, GL_RGBA, GL_UNSIGNED_BYTE, rgba);
        width_ = width;
        height_ = height;
    } else {
        glTexSubImage2D(GL_TEXTURE_2D, 0, 0, 0, width, height, GL_RGBA, GL_UNSIGNED_BYTE, rgba);
    }
    glBindTexture(GL_TEXTURE_2D, static_cast<GLuint>(previous));
}

ImTextureID Texture::id() const {
    return reinterpret_cast<ImTextureID>(static_cast<intptr_t>(id_));
}

std::vector<uint8_t> read_framebuffer(int width, int height) {
    std::vector<uint8_t> pixels(static_cast<size_t>(width) * height * 4);
    glPixelStorei(GL_PACK_ALIGNMENT, 1);
    glReadBuffer(GL_BACK);
    glReadPixels(0, 0, width, height, GL_RGBA, GL_UNSIGNED_BYTE, pixels.data());
    const size_t row = static_cast<size_t>(width) * 4;
    std::vector<uint8_t> swap(row);
    for (int y = 0; y < height / 2; ++y) {
        uint8_t* top = pixels.data() + y * row;
        uint8_t* bottom = pixels.data() + (height - 1 - y) * row;
        std::memcpy(swap.data(), top, row);
        std::memcpy(top, bottom, row);
        std::memcpy(bottom, swap.data(), row);
    }
    // The framebuffer's alpha is whatever blending left there; a screenshot should be opaque.
    for (size_t i = 3; i < pixels.size(); i += 4) pixels[i] = 255;
    return pixels;
}

bool write_framebuffer_png(const std::string& path, int width, int height) {
    const auto pixels = read_framebuffer(width, height);
    return stbi_write_png(path.c_str(), width, height, 4, pixels.data(), width * 4) != 0;
}

bool write_rgba_png(const std::string& path, const uint8_t* rgba, int width, int height,
                    std::string* error) {
    const std::string tmp = path + ".tmp";
    if (width <= 0 || height <= 0 ||
        !stbi_write_png(tmp.c_str(), width, height, 4, rgba, width * 4) ||
        std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::remove(tmp.c_str());
        *error = path + ": cannot write the PNG image (does its folder exist?)";
        return false;
    }
    return true;
}

namespace {

struct PendingCapture {
    std::string path;
    ImVec4 rect;
    std::shared_ptr<CaptureResult> result;
};

void capture_callback(const ImDrawList*, const ImDrawCmd* cmd) {
    std::unique_ptr<PendingCapture> pending(static_cast<PendingCapture*>(cmd->UserCallbackData));
    GLint viewport[4] = {0, 0, 0, 0};
    glGetIntegerv(GL_VIEWPORT, viewport);
    const ImVec2 scale = ImGui::GetIO().DisplayFramebufferScale;
    const int x0 = std::max(0, static_cast<int>(pending->rect.x * scale.x));
    const int y0 = std::max(0, static_cast<int>(pending->rect.y * scale.y));
    const int x1 =
        std::min<int>(viewport[2], static_cast<int>((pending->rect.x + pending->rect.z) * scale.x));
    const int y1 =
        std::min<int>(viewport[3], static_cast<int>((pending->rect.y + pending->rect.w) * scale.y));
    CaptureResult& result = *pending->result;
    result.done = true;
    if (x1 <= x0 || y1 <= y0) {
        result.error = pending->path + ": the region to save is off screen";
        return;
    }
    const auto full = read_framebuffer(viewport[2], viewport[3]);
    const int w = x1 - x0, h = y1 - y0;
    std::vector<uint8_t> crop(static_cast<size_t>(w) * h * 4);
    for (int y = 0; y < h; ++y) {
        std::memcpy(&crop[static_cast<size_t>(y) * w * 4],
                    &full[(static_cast<size_t>(y0 + y) * viewport[2] + x0) * 4],
                    static_cast<size_t>(w) * 4);
    }
    write_rgba_png(pending->path, crop.data(), w, h, &result.error);
}

}  // namespace

std::shared_ptr<CaptureResult> capture_region_png(const std::string& path, const ImVec4& rect) {
    auto result = std::make_shared<CaptureResult>();
    auto* pending = new PendingCapture{path, rect, result};
    ImGui::GetWindowDrawList()->AddCallback(capture_callback, pending);
    // The renderer's state after a callback is whatever the callback left: ask for a reset.
    ImGui::GetWindowDrawList()->AddCallback(ImDrawCallback_ResetRenderState, nullptr);
    return result;
}

}  // namespace krause::ui
