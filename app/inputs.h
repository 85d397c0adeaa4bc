// Resolving what the user names on the command line: checkpoints and images.
#pragma once

#include "training/engine.h"

#include <CLI/CLI.hpp>

#include <memory>
#include <string>
#include <vector>

namespace krause::cli {

// Opens --checkpoint FILE, else the bundled model --model NAME, else the default bundled model;
// UsageError when both are given, NAME is not bundled, or there is nothing to open.
std::shared_ptr<ModelHandle> open_checkpoint(const std::string& path,
                                             const std::string& model_name = "");
// Adds --model NAME (a bundled model of assets/models/models.json) to a command.
void add_model_option(CLI::App* command, std::string& model_name);
// The data set a command defaults to: the bundled model's own for --model NAME, else `fallback`.
std::string model_data(const std::string& model_name, const std::string& fallback);

// Refuses an output file named by option (--out) before any work is done: an empty name, a
// directory, or a folder that does not exist; UsageError naming the path.
void check_output_file(const std::string& path, const std::string& option);

// An image as tokens in model order from "FILE.png" or "KIND[:DIR]:INDEX" (a test-split image),
// checked against the expected shape.
std::vector<uint8_t> load_image_tokens(const std::string& spec, int64_t height, int64_t width,
                                       int64_t channels);

// "ROW,COL" or "ROW,COL,CHANNEL" -> (row, col, channel), range-checked.
struct PixelRef {
    int64_t row = 0, col = 0, channel = 0;
};
PixelRef parse_pixel(const std::string& text, int64_t height, int64_t width, int64_t channels);

}  // namespace krause::cli
