// The bundled-model registry: finding assets/, reading models.json, counting parameters from a
// checkpoint's header without loading its tensors.
#include "training/bundled_models.h"

#include "model/config.h"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace krause {
namespace {

namespace fs = std::filesystem;
constexpr const char* kRegistry = "models/models.json";

// assets/ beside the executable or above it, $KRAUSE_ASSETS_DIR first, the source tree last.
fs::path assets_dir() {
    std::vector<fs::path> roots;
    if (const char* env = std::getenv("KRAUSE_ASSETS_DIR")) roots.emplace_back(env);
    std::error_code ec;
    const auto exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        for (auto dir = exe.parent_path(); !dir.empty() && dir != dir.root_path();
             dir = dir.parent_path()) {
            roots.push_back(dir / "assets");
        }
    }
#ifdef KRAUSE_SOURCE_DIR
    roots.emplace_back(fs::path(KRAUSE_SOURCE_DIR) / "assets");
#endif
    for (const auto& root : roots) {
        if (fs::is_regular_file(root / kRegistry, ec)) return root;
    }
    return {};
}

// Model parameters listed in a safetensors header (optimiser and RNG state excluded); 0 when the
// header cannot be read. The tensors themselves are not read.
int64_t header_parameters(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    unsigned char size_bytes[8];
    if (!in.read(reinterpret_cast<char*>(size_bytes), 8)) return 0;
    uint64_t size = 0;
    for (int i = 7; i >= 0; --i) size = (size << 8) | size_bytes[i];
    if (size > (100u << 20)) return 0;
    std::string header(size, '\0');
    if (!in.read(header.data(), static_cast<std::streamsize>(size))) return 0;
    const auto json = nlohmann::json::parse(header, nullptr, /*allow_exceptions=*/false);
    if (!json.is_object()) return 0;
    int64_t total = 0;
    for (const auto& [name, entry] : json.items()) {
        if (name == "__metadata__" || name.rfind("optim.", 0) == 0 || name.rfind("train.", 0) == 0) {
            continue;
        }
        int64_t n = 1;
        for (const auto& d : entry.value("shape", nlohmann::json::array())) n *= d.get<int64_t>();
        total += n;
    }
    return total;
}

std::vector<BundledModel> read_registry() {
    std::vector<BundledModel> models;
    const auto root = assets_dir();
    if (root.empty()) return models;
    const auto file = root / kRegistry;
    std::ifstream in(file);
    nlohmann::json j;
    try {
        in >> j;
        for (const auto& e : j.at("models")) {
            BundledModel m;
            m.name = e.at("name").get<std::string>();
            m.file = e.at("file").get<std::string>();
            m.data = e.at("data").get<std::string>();
            m.attention = e.at("attention").get<std::string>();
            m.preset = e.at("preset").get<std::string>();
            m.description = e.value("description", "");
            m.bpd_all = e.at("bpd").at(0).get<double>();
            m.bpd_predicted = e.at("bpd").at(1).get<double>();
            m.bpd_bound = e.at("bpd_bound").get<double>();
            m.bound_images = e.value("bpd_images", m.bound_images);
            m.seq_len = preset(m.preset).seq_len();
            m.grid_seconds = e.value("cpu_grid_seconds", 0.0);
            m.grid_measured = m.grid_seconds > 0;
            const auto path = root / "models" / m.file;
            std::error_code ec;
            if (fs::is_regular_file(path, ec)) {
                m.path = path.string();
                m.parameters = header_parameters(path);
            }
            models.push_back(std::move(m));
        }
        // Models without a measurement of their own: the CPU cost of a step grows with the
        // parameters, of a grid with T as well.
        const auto& timing = j.at("cpu_grid_seconds");
        const auto reference = timing.at("model").get<std::string>();
        const double seconds = timing.at("seconds").get<double>();
        for (const auto& ref : models) {
            if (ref.name != reference || ref.parameters == 0) continue;
            const double per_unit = seconds / static_cast<double>(ref.parameters * ref.seq_len);
            for (auto& m : models) {
                if (m.grid_measured) continue;
                m.grid_seconds = per_unit * static_cast<double>(m.parameters * m.seq_len);
            }
            break;
        }
    } catch (const std::exception& e) {
        throw std::runtime_error(file.string() + ": " + e.what());
    }
    return models;
}

}  // namespace

std::vector<BundledModel> bundled_registry() { return read_registry(); }

std::vector<BundledModel> bundled_models() {
    std::vector<BundledModel> out;
    for (auto& m : bundled_registry()) {
        if (!m.path.empty()) out.push_back(std::move(m));
    }
    return out;
}

BundledModel find_bundled_model(const std::string& name) {
    const auto models = bundled_models();
    std::string names;
    for (const auto& m : models) {
        if (m.name == name) return m;
        names += (names.empty() ? "" : ", ") + m.name;
    }
    throw std::invalid_argument("no bundled model '" + name + "' (bundled: " +
                                (names.empty() ? "none" : names) + ")");
}

}  // namespace krause
