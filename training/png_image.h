// Reading a PNG image into tokens of a model's shape (a prompt), for the CLI's --image FILE.png
// and the studio's drawn prompts; kept apart from the engine so that it can be fuzzed alone.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace krause {

// A file that is not a usable prompt image: the message names the file; `hint` may say what to do.
struct ImageFileError : std::runtime_error {
    ImageFileError(const std::string& what, std::string hint)
        : std::runtime_error(what), hint(std::move(hint)) {}
    std::string hint;
};

// The pixels of a PNG file as tokens in model order (row, column, channel), converted to the
// given channel count; ImageFileError naming the file when it is missing, not a regular file, not
// a PNG, damaged, or not height x width.
std::vector<uint8_t> read_png_tokens(const std::string& path, int64_t height, int64_t width,
                                     int64_t channels);

}  // namespace krause
