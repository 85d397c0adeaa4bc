// The studio's one data folder: lookups per kind, the chosen folder, downloads into it. Nothing
// here throws into the UI; failures become one-line messages naming what to do in the studio.
#include "ui/data_folder.h"

#include "training/options.h"

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <filesystem>

namespace krause::ui {

namespace fs = std::filesystem;

namespace {

// The chosen folder goes before the search order, so that what the user picked in this session
// wins even over $KRAUSE_DATA_DIR; a kind it lacks is still found elsewhere.
DataLookup look_up(const std::string& root, const std::string& kind) {
    DataLookup lookup;
    const DatasetKind k = parse_dataset_kind(kind);
    if (!root.empty()) {
        const std::string dir = kind_dir(root, k);
        lookup.looked_in.push_back(dir);
        if (dataset_files_present(k, dir)) {
            lookup.dir = dir;
            return lookup;
        }
    }
    DataLookup searched = find_data_dir(k);
    for (const auto& dir : searched.looked_in) {
        if (std::find(lookup.looked_in.begin(), lookup.looked_in.end(), dir) ==
            lookup.looked_in.end()) {
            lookup.looked_in.push_back(dir);
        }
    }
    lookup.dir = searched.dir;
    return lookup;
}

}  // namespace

const std::vector<std::string>& data_kind_names() {
    return dataset_kind_choices();
}

void init_data_folders(StudioState& state) {
    const char* mirror = std::getenv("KRAUSE_DATA_MIRROR");
    state.folders.base_url = mirror ? mirror : "";
    refresh_data_folders(state);
    // The browser opens where a folder exists: the chosen one, the folder downloads go to, or
    // else the home or working folder (a new user's download folder is made by the first
    // download).
    const char* home = std::getenv("HOME");
    std::error_code ec;
    for (const std::string& start :
         {state.folders.root.empty() ? default_fetch_root() : state.folders.root,
          std::string(home != nullptr ? home : ""), fs::current_path(ec).string()}) {
        state.folders.browser.folder = start;
        if (!start.empty() && fs::is_directory(start, ec)) break;
    }
}

void refresh_data_folders(StudioState& state) {
    DataFolderState& f = state.folders;
    for (const auto& kind : data_kind_names()) {
        try {
            f.found[kind] = look_up(f.root, kind);
        } catch (const std::exception& e) {
            f.found[kind] = DataLookup{};
            f.error = e.what();
        }
    }
    // A download may have made or filled a folder: list it again, past an earlier failure.
    f.browser.listed.clear();
    f.browser.error.clear();
    state.data.dir = data_dir_for(state, state.data.kind);
    // A lookup that now finds the data set clears an earlier failure to load it, so that the
    // panels that load it on their own (Dynamics) try again.
    if (!state.data.data && !state.data.dir.empty()) state.data.error.clear();
}

std::string data_dir_for(const StudioState& state, const std::string& kind) {
    const auto it = state.folders.found.find(kind);
    return it == state.folders.found.end() ? "" : it->second.dir;
}

std::string data_missing_message(const StudioState& state, const std::string& kind) {
    std::string looked;
    const auto it = state.folders.found.find(kind);
    if (it != state.folders.found.end()) {
        for (const auto& dir : it->second.looked_in) looked += (looked.empty() ? "" : ", ") + dir;
    }
    return "no " + kind + " data found (looked in: " + (looked.empty() ? "nowhere" : looked) +
           "); choose the data folder in the Data window or press Download there";
}

bool set_data_folder(StudioState& state, const std::string& root, std::string* error) {
    std::error_code ec;
    const fs::path path = fs::absolute(root, ec).lexically_normal();
    if (root.empty() || ec || !fs::is_directory(path, ec)) {
        *error = "'" + root + "' is not a folder; pick an existing folder";
        return false;
    }
    const ChosenDataFolder chosen = resolve_data_folder(path.string());
    if (chosen.root.empty()) {
        *error = chosen.note;
        return false;
    }
    const std::string& folder = chosen.root;
    state.folders.message = chosen.note;
    try {
        remember_data_dir(folder);
    } catch (const std::exception& e) {
        // Still used in this session; only the next start will not know it.
        state.folders.message = std::string("not remembered: ") + e.what();
    }
    state.folders.root = folder;
    state.folders.browser.folder = folder;
    state.folders.error.clear();
    refresh_data_folders(state);
    return true;
}

bool start_data_fetch(StudioState& state, const std::string& kind, std::string* error) {
    DataFolderState& f = state.folders;
    if (f.fetch && !f.fetch->done()) {
        *error = "a download is already going; stop it first";
        return false;
    }
    FetchRequest request;
    try {
        const DatasetKind k = parse_dataset_kind(kind);
        request.kind = kind;
        request.dir = kind_dir(f.root.empty() ? default_fetch_root() : f.root, k);
        request.base_url = f.base_url;
        state.retired.retire(std::move(f.fetch));
        f.fetch_shown.reset();
        f.fetch_kind = kind;
        f.message.clear();
        f.error.clear();
        f.fetch = start_fetch(request);
    } catch (const std::exception& e) {
        *error = e.what();
        return false;
    }
    return true;
}

void update_data_fetch(StudioState& state) {
    DataFolderState& f = state.folders;
    if (!f.fetch) return;
    if (auto latest = f.fetch->snapshot()) f.fetch_shown = latest;
    if (!f.fetch->done()) return;
    const JobState end = f.fetch->state();
    if (end == JobState::Failed) {
        f.error = "download of " + f.fetch_kind + " failed: " + f.fetch->error();
    } else if (end == JobState::Stopped) {
        f.message = "download of " + f.fetch_kind + " stopped";
    } else {
        f.message = f.fetch_kind + " downloaded" +
                    (f.fetch_shown ? " into " + f.fetch_shown->dir : std::string());
    }
    state.retired.retire(std::move(f.fetch));
    refresh_data_folders(state);
}

}  // namespace krause::ui
