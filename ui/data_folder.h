// The studio's one data folder: which folder each data set kind is read from, choosing another
// folder (remembered across sessions), and downloading a kind into it. The Data window draws it.
#pragma once

#include "ui/studio_state.h"

#include <string>
#include <vector>

namespace krause::ui {

// The kinds the studio offers, by name: mnist, fashion-mnist, cifar10.
const std::vector<std::string>& data_kind_names();

// First start: the mirror from $KRAUSE_DATA_MIRROR, then refresh_data_folders.
void init_data_folders(StudioState& state);
// Looks every kind up again (the chosen folder first, then data_search_paths()) and hands the
// folders to the Complete and Train panels.
void refresh_data_folders(StudioState& state);
// The folder kind is read from; "" when it is found nowhere.
std::string data_dir_for(const StudioState& state, const std::string& kind);
// "no mnist data found (looked in: A, B); choose the data folder ... or press Download".
std::string data_missing_message(const StudioState& state, const std::string& kind);
// Makes root (made absolute; it must be an existing folder) the folder of the whole studio and
// remembers it for the next start; a data set's own folder (ROOT/mnist, ...) stands for ROOT
// (resolve_data_folder), and the Data window says so.
bool set_data_folder(StudioState& state, const std::string& root, std::string* error);
// Downloads kind into the chosen folder (or default_fetch_root()) with the mirror, if any.
bool start_data_fetch(StudioState& state, const std::string& kind, std::string* error);
// Takes the download's newest snapshot; when it ends, reports and looks the folders up again.
void update_data_fetch(StudioState& state);

// The Data window (shown while folders.window_open), and the line the data panels show: the
// folder in use or why there is none, with a button that opens the window.
void draw_data_window(StudioState& state);
void data_folder_line(StudioState& state, const std::string& kind);

}  // namespace krause::ui
