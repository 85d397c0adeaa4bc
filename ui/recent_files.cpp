// Recent-file list and folder listing. Failures here only cost convenience, so they are reported
// in the browser and never thrown.
#include "ui/recent_files.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace krause::ui {

namespace fs = std::filesystem;

namespace {
constexpr size_t kMaxRecent = 10;
constexpr const char* kRecentFile = "recent.txt";
}  // namespace

std::string config_dir() {
    if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg && *xdg) {
        return (fs::path(xdg) / "krause-studio").string();
    }
    if (const char* home = std::getenv("HOME"); home && *home) {
        return (fs::path(home) / ".config" / "krause-studio").string();
    }
    return "";
}

std::vector<std::string> load_recent() {
    std::vector<std::string> recent;
    const std::string dir = config_dir();
    if (dir.empty()) return recent;
    std::ifstream in(fs::path(dir) / kRecentFile);
    std::string line;
    while (std::getline(in, line) && recent.size() < kMaxRecent) {
        if (!line.empty()) recent.push_back(line);
    }
    return recent;
}

void remember_recent(std::vector<std::string>& recent, const std::string& path) {
    std::error_code ec;
    const std::string absolute = fs::absolute(path, ec).lexically_normal().string();
    const std::string entry = ec ? path : absolute;
    recent.erase(std::remove(recent.begin(), recent.end(), entry), recent.end());
    recent.insert(recent.begin(), entry);
    if (recent.size() > kMaxRecent) recent.resize(kMaxRecent);

    const std::string dir = config_dir();
    if (dir.empty()) return;
    fs::create_directories(dir, ec);
    std::ofstream out(fs::path(dir) / kRecentFile, std::ios::trunc);
    for (const auto& r : recent) out << r << '\n';
}

void list_folder(FileBrowser& browser) {
    browser.folders.clear();
    browser.files.clear();
    browser.error.clear();
    browser.listed = browser.folder;
    std::error_code ec;
    fs::directory_iterator it(browser.folder.empty() ? "." : browser.folder, ec);
    if (ec) {
        browser.error = browser.folder + ": " + ec.message();
        return;
    }
    for (const auto& entry : it) {
        const std::string name = entry.path().filename().string();
        if (name.empty() || name[0] == '.') continue;
        if (entry.is_directory(ec)) {
            browser.folders.push_back(name);
        } else if (entry.path().extension() == ".safetensors") {
            browser.files.push_back(name);
        }
    }
    std::sort(browser.folders.begin(), browser.folders.end());
    std::sort(browser.files.begin(), browser.files.end());
}

}  // namespace krause::ui
