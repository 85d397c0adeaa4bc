// The data-folder search order, the remembered folder (a one-line file in the config folder), and
// parse_dataset_spec, which turns "mnist" into the folder found.
#include "data/data_dirs.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace krause {

namespace fs = std::filesystem;

namespace {

constexpr const char* kAppFolder = "krause-studio";
constexpr const char* kRememberedFile = "data-dir";
constexpr const char* kSystemRoot = "/usr/share/datasets";

std::string env(const char* name) {
    const char* value = std::getenv(name);
    return value != nullptr ? std::string(value) : std::string();
}

std::string absolute(const std::string& path) {
    std::error_code ec;
    const fs::path p = fs::absolute(path, ec);
    return (ec ? fs::path(path) : p).lexically_normal().string();
}

// "/a/b/" and "/a/b" are one folder.
std::string without_trailing_slash(std::string path) {
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    return path;
}

}  // namespace

std::string config_dir() {
    const std::string xdg = env("XDG_CONFIG_HOME");
    if (!xdg.empty()) return (fs::path(xdg) / kAppFolder).string();
    const std::string home = env("HOME");
    if (!home.empty()) return (fs::path(home) / ".config" / kAppFolder).string();
    return "";
}

std::string user_data_dir() {
    const std::string xdg = env("XDG_DATA_HOME");
    if (!xdg.empty()) return (fs::path(xdg) / kAppFolder / "data").string();
    const std::string home = env("HOME");
    if (!home.empty()) return (fs::path(home) / ".local" / "share" / kAppFolder / "data").string();
    return "";
}

std::string remembered_data_dir() {
    const std::string dir = config_dir();
    if (dir.empty()) return "";
    std::ifstream in(fs::path(dir) / kRememberedFile);
    std::string line;
    if (!std::getline(in, line)) return "";
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    return line;
}

void remember_data_dir(const std::string& root) {
    const std::string dir = config_dir();
    if (dir.empty())
        throw DataError("cannot remember the data folder: neither XDG_CONFIG_HOME nor HOME is set");
    const fs::path file = fs::path(dir) / kRememberedFile;
    std::error_code ec;
    if (root.empty()) {
        fs::remove(file, ec);
        if (ec) throw DataError(file.string() + ": cannot remove: " + ec.message());
        return;
    }
    fs::create_directories(dir, ec);
    if (ec) throw DataError(dir + ": cannot create folder: " + ec.message());
    const std::string tmp = file.string() + ".tmp-" + std::to_string(getpid());
    {
        std::ofstream out(tmp, std::ios::trunc);
        out << without_trailing_slash(absolute(root)) << '\n';
        out.close();
        if (!out) {
            std::remove(tmp.c_str());
            throw DataError(tmp + ": cannot write: " + std::strerror(errno));
        }
    }
    if (std::rename(tmp.c_str(), file.c_str()) != 0) {
        const int err = errno;
        std::remove(tmp.c_str());
        throw DataError(file.string() + ": cannot write: " + std::strerror(err));
    }
}

std::vector<DataRoot> data_search_paths() {
    std::vector<DataRoot> candidates = {
        {env("KRAUSE_DATA_DIR"), "KRAUSE_DATA_DIR"},
        {remembered_data_dir(), "last used"},
        {user_data_dir(), "user data folder"},
        {"data", "./data"},
        {kSystemRoot, "system"},
    };
    std::vector<DataRoot> roots;
    for (auto& c : candidates) {
        if (c.path.empty()) continue;
        c.path = without_trailing_slash(absolute(c.path));
        bool seen = false;
        for (const auto& r : roots) seen = seen || r.path == c.path;
        if (!seen) roots.push_back(std::move(c));
    }
    return roots;
}

std::string kind_dir(const std::string& root, DatasetKind kind) {
    return (fs::path(root) / default_subdir(kind)).string();
}

DataLookup find_data_dir(DatasetKind kind) {
    DataLookup lookup;
    for (const auto& root : data_search_paths()) {
        const std::string dir = kind_dir(root.path, kind);
        lookup.looked_in.push_back(dir);
        if (dataset_files_present(kind, dir)) {
            lookup.dir = dir;
            break;
        }
    }
    return lookup;
}

DataLookup find_data_dir(const std::string& kind) {
    return find_data_dir(parse_dataset_kind(kind));
}

ChosenDataFolder resolve_data_folder(const std::string& folder) {
    const fs::path path(without_trailing_slash(absolute(folder)));
    const std::vector<DatasetKind> kinds = {DatasetKind::Mnist, DatasetKind::FashionMnist,
                                            DatasetKind::Cifar10};
    ChosenDataFolder chosen{path.string(), "", false};
    for (DatasetKind kind : kinds) {
        if (dataset_files_present(kind, kind_dir(chosen.root, kind))) chosen.has_data = true;
    }
    if (chosen.has_data) return chosen;
    for (DatasetKind kind : kinds) {
        if (!dataset_files_present(kind, path.string())) continue;
        const std::string name = to_string(kind), subdir = default_subdir(kind);
        fs::path root;
        if (path.filename() == subdir) {
            root = path.parent_path();
        } else if (kind == DatasetKind::Cifar10 && path.filename() == "cifar-10-batches-bin" &&
                   path.parent_path().filename() == subdir) {
            root = path.parent_path().parent_path();
        }
        if (root.empty()) {
            return {"",
                    path.string() + " holds the " + name +
                        " files itself, but a data folder holds them in " + subdir +
                        "/ (move them into " + (path / subdir).string() + ")",
                    false, name};
        }
        return {
            root.string(),
            path.string() + " holds the " + name + " files, so the data folder is " + root.string(),
            true, name};
    }
    return chosen;
}

std::string default_fetch_root() {
    std::string root = env("KRAUSE_DATA_DIR");
    if (root.empty()) root = remembered_data_dir();
    if (root.empty()) root = user_data_dir();
    if (root.empty()) root = "data";
    return without_trailing_slash(absolute(root));
}

std::string data_not_found_message(DatasetKind kind, const DataLookup& lookup) {
    const std::string name = to_string(kind);
    std::string looked;
    for (const auto& dir : lookup.looked_in) looked += (looked.empty() ? "" : ", ") + dir;
    std::string msg = "no " + name + " data found (looked in: " + looked +
                      "); run `krause data fetch " + name + "`, copy the files into " +
                      kind_dir(default_fetch_root(), kind);
    if (kind == DatasetKind::FashionMnist) {
        msg += ", apt-get install dataset-fashion-mnist";
    }
    return msg + ", or pass --data " + name + ":DIR";
}

DatasetSpec parse_dataset_spec(const std::string& text) {
    DatasetSpec spec;
    const size_t colon = text.find(':');
    spec.kind = parse_dataset_kind(text.substr(0, colon));
    if (colon != std::string::npos) {
        spec.dir = text.substr(colon + 1);
        if (spec.dir.empty()) {
            throw std::invalid_argument("dataset spec '" + text +
                                        "' has an empty folder after ':'; write " +
                                        to_string(spec.kind) + ":/path/to/folder");
        }
        return spec;
    }
    const DataLookup lookup = find_data_dir(spec.kind);
    if (lookup.dir.empty()) throw DataError(data_not_found_message(spec.kind, lookup));
    spec.dir = lookup.dir;
    return spec;
}

}  // namespace krause
