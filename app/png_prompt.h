// Reading a PNG prompt image (--image FILE.png) into tokens, kept apart from the rest of the CLI's
// inputs so that it can be fuzzed without the engine.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace krause::cli {

// The pixels of a PNG file as tokens in model order (row, column, channel), converted to the
// given channel count; UsageError naming the file when it is missing, not a regular file, not a
// PNG, damaged, or not height x width.
std::vector<uint8_t> read_png_prompt(const std::string& path, int64_t height, int64_t width,
                                     int64_t channels);

}  // namespace krause::cli
