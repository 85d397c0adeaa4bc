// Panel settings by name ("sample.count", "train.steps", ...), for the script verb `set`.
#pragma once

#include "ui/studio_state.h"

#include <string>
#include <vector>

namespace krause::ui {

// Sets `key` from its text form; false with a message naming the key and what it accepts.
bool apply_setting(StudioState& state, const std::string& key, const std::string& value,
                   std::string* error);
// The same checks without a state to change, for validating a script before it runs.
bool check_setting(const std::string& key, const std::string& value, std::string* error);
std::vector<std::string> setting_names();

}  // namespace krause::ui
