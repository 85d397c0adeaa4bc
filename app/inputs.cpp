// Checkpoint, image and pixel arguments, with errors that say how to fix them.
#include "app/inputs.h"

#include "app/commands.h"
#include "app/png_prompt.h"
#include "data/dataset.h"
#include "training/bundled_models.h"

#include <cctype>
#include <filesystem>
#include <sstream>

namespace krause::cli {

namespace {

BundledModel bundled_or_usage_error(const std::string& name) {
    try {
        return find_bundled_model(name);
    } catch (const std::invalid_argument& e) {
        throw UsageError(std::string("--model: ") + e.what(),
                         "or pass --checkpoint FILE for a model of your own");
    }
}

}  // namespace

std::shared_ptr<ModelHandle> open_checkpoint(const std::string& path,
                                             const std::string& model_name) {
    if (!path.empty() && !model_name.empty()) {
        throw UsageError("--checkpoint and --model both name a model", "pass one of them");
    }
    std::string chosen = path;
    if (!model_name.empty()) chosen = bundled_or_usage_error(model_name).path;
    if (chosen.empty()) {
        chosen = bundled_model_path();
        if (chosen.empty()) {
            throw UsageError("no --checkpoint given and no bundled model found",
                             "pass --checkpoint FILE, or train one with `krause train --data "
                             "mnist --out runs/mnist`");
        }
    }
    if (!std::filesystem::exists(chosen)) {
        throw UsageError(chosen + ": no such checkpoint file",
                         "check the path; `krause init --out FILE` makes a fresh model");
    }
    return open_model(chosen);
}

void add_model_option(CLI::App* command, std::string& model_name) {
    std::string names;
    try {
        for (const auto& m : bundled_models()) names += (names.empty() ? "" : " | ") + m.name;
    } catch (const std::runtime_error&) {
        names = "the bundled models' list is unreadable";
    }
    command->add_option("--model", model_name, "a bundled model: " + (names.empty() ? "none" : names))
        ->check(non_empty());
}

std::string model_data(const std::string& model_name, const std::string& fallback) {
    return model_name.empty() ? fallback : bundled_or_usage_error(model_name).data;
}

void check_output_file(const std::string& path, const std::string& option) {
    if (path.empty()) throw UsageError(option + " is empty", "name the file to write");
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
        throw UsageError(path + ": is a directory", "name a file to write, e.g. " + path + "/out");
    }
    const auto folder = std::filesystem::path(path).parent_path();
    if (!folder.empty() && !std::filesystem::is_directory(folder, ec)) {
        throw UsageError(path + ": folder '" + folder.string() + "' does not exist",
                         "create it first, or write elsewhere");
    }
}

namespace {

bool all_digits(const std::string& s) {
    if (s.empty()) return false;
    for (char c : s) {
        if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    }
    return true;
}

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::vector<uint8_t> load_image_tokens(const std::string& spec, int64_t height, int64_t width,
                                       int64_t channels) {
    std::string lower = spec;
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (ends_with(lower, ".png")) return read_png_prompt(spec, height, width, channels);
    const auto colon = spec.rfind(':');
    if (colon == std::string::npos || !all_digits(spec.substr(colon + 1))) {
        throw UsageError("--image '" + spec + "' is neither a .png file nor KIND[:DIR]:INDEX",
                         "e.g. --image mnist:0 or --image mnist:/data/mnist:42 or --image x.png");
    }
    const int64_t index = std::stoll(spec.substr(colon + 1));
    const auto data = load_dataset(parse_dataset_spec(spec.substr(0, colon)), Split::Test, index + 1);
    if (index >= data.size()) {
        throw UsageError("--image index " + std::to_string(index) + " is beyond the " +
                             std::to_string(data.size()) + " test images",
                         "");
    }
    if (data.height != height || data.width != width || data.channels != channels) {
        throw UsageError("the data set's images do not have the model's shape", "");
    }
    return std::vector<uint8_t>(data.image(index), data.image(index) + data.seq_len());
}

PixelRef parse_pixel(const std::string& text, int64_t height, int64_t width, int64_t channels) {
    std::vector<int64_t> parts;
    std::stringstream ss(text);
    std::string item;
    while (std::getline(ss, item, ',')) {
        if (!all_digits(item)) {
            throw UsageError("--pixel '" + text + "' must be ROW,COL or ROW,COL,CHANNEL", "");
        }
        parts.push_back(std::stoll(item));
    }
    if (parts.size() != 2 && parts.size() != 3) {
        throw UsageError("--pixel '" + text + "' must be ROW,COL or ROW,COL,CHANNEL", "");
    }
    PixelRef p{parts[0], parts[1], parts.size() == 3 ? parts[2] : 0};
    if (p.row >= height || p.col >= width || p.channel >= channels) {
        throw UsageError("--pixel " + text + " is outside the " + std::to_string(height) + "x" +
                             std::to_string(width) + "x" + std::to_string(channels) + " image",
                         "");
    }
    if (p.row == 0 && p.col == 0 && p.channel == 0) {
        throw UsageError("--pixel 0,0 is the first sub-pixel: it comes from the prior and "
                         "attends to nothing",
                         "pick any later pixel");
    }
    return p;
}

}  // namespace krause::cli
