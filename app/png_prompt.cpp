// --image FILE.png: the shared PNG reader, its errors turned into usage errors for the CLI.
#include "app/png_prompt.h"

#include "app/commands.h"
#include "training/png_image.h"

namespace krause::cli {

std::vector<uint8_t> read_png_prompt(const std::string& path, int64_t height, int64_t width,
                                     int64_t channels) {
    try {
        return read_png_tokens(path, height, width, channels);
    } catch (const ImageFileError& e) {
        throw UsageError(e.what(), e.hint);
    }
}

}  // namespace krause::cli
