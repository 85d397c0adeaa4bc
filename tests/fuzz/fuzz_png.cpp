// Fuzzes PNG prompts through the CLI's own loader, read_png_prompt (app/png_prompt.h), which
// decodes with stb_image. Input: [shape selector][file]; bit 0 picks the model shape 28x28x1
// (MNIST) or 32x32x3 (CIFAR-10). Only UsageError naming the file may escape.
#include "app/commands.h"
#include "app/png_prompt.h"
#include "fuzz_util.h"

#include <stb/stb_image_write.h>

using namespace krause;
using namespace krause::fuzz;

namespace {

Bytes png(int w, int h, int n) {
    std::vector<uint8_t> pixels(size_t(w) * h * n);
    for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = uint8_t(i * 31);
    Bytes out;
    stbi_write_png_to_func(
        [](void* ctx, void* data, int size) {
            auto* b = static_cast<Bytes*>(ctx);
            b->insert(b->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
        },
        &out, w, h, n, pixels.data(), w * n);
    return out;
}

Bytes with(uint8_t sel, Bytes b) {
    b.insert(b.begin(), sel);
    return b;
}

std::vector<std::pair<std::string, Bytes>> seeds() {
    // The width and height of IHDR sit at bytes 16..23 of a PNG (stb does not check chunk CRCs):
    // 32000x32000 is within stb's limits, so decoding it would allocate about 1 GB.
    Bytes huge = png(28, 28, 1);
    for (int i : {18, 22}) huge[size_t(i)] = 0x7d;
    for (int i : {19, 23}) huge[size_t(i)] = 0;
    return {{"mnist-gray", with(0, png(28, 28, 1))}, {"mnist-rgba", with(0, png(28, 28, 4))},
            {"cifar-rgb", with(1, png(32, 32, 3))},  {"cifar-gray", with(1, png(32, 32, 1))},
            {"wrong-size", with(0, png(5, 3, 2))},   {"huge-header", with(0, huge)},
            {"not-png", with(0, text("GIF89a"))}};
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    maybe_write_seeds(seeds);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    const bool cifar = data[0] & 1;
    const int64_t side = cifar ? 32 : 28, channels = cifar ? 3 : 1;
    const std::string path = scratch_dir() + "/prompt.png";
    write_file(path, data + 1, size - 1);
    try {
        const auto tokens = cli::read_png_prompt(path, side, side, channels);
        if (tokens.size() != size_t(side * side * channels)) std::abort();
    } catch (const cli::UsageError& e) {
        expect_names(e, path);
    } catch (const std::exception& e) {
        unexpected("std::exception", &e);
    }
    return 0;
}
