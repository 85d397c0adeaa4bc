// Token images to RGBA pixels and PNG grids (stb_image_write).
#include "training/engine.h"

#include <stb/stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace krause {

std::vector<uint8_t> image_rgba(const Images& images, int64_t index) {
    if (index < 0 || index >= images.count) throw std::out_of_range("image index out of range");
    const int64_t h = images.height, w = images.width, c = images.channels;
    const int64_t T = images.seq_len();
    const uint8_t* src = images.tokens.data() + index * T;
    const int64_t filled = images.filled_of(index);
    std::vector<uint8_t> rgba(h * w * 4);
    for (int64_t p = 0; p < h * w; ++p) {
        uint8_t* out = &rgba[p * 4];
        for (int64_t ch = 0; ch < 3; ++ch) {
            const int64_t sub = p * c + (c == 1 ? 0 : ch);
            out[ch] = sub < filled ? src[sub] : (ch == 2 ? 72 : 24);
        }
        out[3] = 255;
    }
    return rgba;
}

void write_png_grid(const std::string& path, const Images& images, int64_t columns, int64_t scale) {
    if (images.count < 1) throw std::invalid_argument("write_png_grid: no images");
    if (scale < 1 || scale > 64) throw std::invalid_argument("write_png_grid: scale must be 1..64");
    if (columns <= 0) columns = static_cast<int64_t>(std::ceil(std::sqrt(images.count)));
    const int64_t rows = (images.count + columns - 1) / columns;
    const int64_t gap = scale;
    const int64_t cell_w = images.width * scale, cell_h = images.height * scale;
    const int64_t W = columns * cell_w + (columns - 1) * gap;
    const int64_t H = rows * cell_h + (rows - 1) * gap;
    std::vector<uint8_t> canvas(W * H * 4, 255);
    for (int64_t i = 0; i < images.count; ++i) {
        const auto rgba = image_rgba(images, i);
        const int64_t x0 = (i % columns) * (cell_w + gap);
        const int64_t y0 = (i / columns) * (cell_h + gap);
        for (int64_t y = 0; y < cell_h; ++y) {
            for (int64_t x = 0; x < cell_w; ++x) {
                const uint8_t* src = &rgba[((y / scale) * images.width + x / scale) * 4];
                std::copy(src, src + 4, &canvas[((y0 + y) * W + x0 + x) * 4]);
            }
        }
    }
    const std::string tmp = path + ".tmp";
    if (!stbi_write_png(tmp.c_str(), static_cast<int>(W), static_cast<int>(H), 4, canvas.data(),
                        static_cast<int>(W * 4)) ||
        std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::remove(tmp.c_str());
        throw std::runtime_error(path + ": cannot write the PNG image");
    }
}

}  // namespace krause
