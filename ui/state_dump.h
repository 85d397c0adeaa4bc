// The studio's state as JSON (what scripted runs write after each step) and the frame-time
// summary written at the end of a run.
#pragma once

#include "ui/studio_state.h"

#include <nlohmann/json.hpp>

namespace krause::ui {

nlohmann::json dump_state(const StudioState& state);

// p50 / p95 / max of the frame times, over all frames and over those with training running;
// frames that wrote a screenshot are left out (they time the PNG encoder, not the UI).
nlohmann::json frame_summary(const FrameTimes& frames);

}  // namespace krause::ui
