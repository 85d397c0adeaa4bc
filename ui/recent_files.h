// Remembered checkpoints (~/.config/krause-studio/recent.txt) and the folder listing behind the
// Model panel's file browser.
#pragma once

#include "ui/studio_state.h"

#include <string>
#include <vector>

namespace krause::ui {

// $XDG_CONFIG_HOME/krause-studio, else ~/.config/krause-studio; empty when neither is known.
std::string config_dir();

std::vector<std::string> load_recent();
// Moves `path` to the front (made absolute), keeps the newest few, and saves the list.
void remember_recent(std::vector<std::string>& recent, const std::string& path);

// Lists sub-folders and *.safetensors files of browser.folder into the browser.
void list_folder(FileBrowser& browser);

}  // namespace krause::ui
