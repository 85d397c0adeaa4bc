// The krause-studio window: GLFW + OpenGL 3 + Dear ImGui around the panels, optionally driven by
// a script for tests and screenshots.
#pragma once

#include <string>

namespace krause::ui {

struct StudioOptions {
    std::string checkpoint;   // open this model at start
    std::string script;       // play this script, then exit
    std::string screenshots;  // where the script's screenshots and state dumps go
    bool named_shots_only = false;  // files only for `screenshot` steps (and a failed one)
    int width = 1400;
    int height = 900;
};

// Runs until the window is closed or the script ends. Returns the process exit status: 0, 1 when
// the window cannot open or a script step failed, 2 for a bad script.
int run_studio(const StudioOptions& options);

}  // namespace krause::ui
