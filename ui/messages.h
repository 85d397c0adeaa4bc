// Messages from the engine rephrased for the studio: advice that names command-line options is
// turned into the fields and buttons that do the same thing here.
#pragma once

#include <string>

namespace krause::ui {

// The message with every command-line hint replaced by the studio action; unchanged otherwise.
std::string for_studio(const std::string& message);

}  // namespace krause::ui
