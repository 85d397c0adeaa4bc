// How the studio looks: text size (following the monitor's content scale unless overridden) and
// a dark or light theme, remembered in the config folder.
#pragma once

#include <string>

namespace krause::ui {

struct ViewPrefs {
    float font_scale = 0;  // 0: follow the monitor's content scale; else this factor
    bool light = false;
};

constexpr float kMinFontScale = 0.5f, kMaxFontScale = 4.0f;

ViewPrefs load_view_prefs();
void save_view_prefs(const ViewPrefs& prefs);
// The scale in effect: the override, else the monitor's, within [kMinFontScale, kMaxFontScale].
float effective_scale(const ViewPrefs& prefs, float content_scale);
// Sets the theme and sizes and rebuilds the font at the scaled size. Call between frames, after
// the OpenGL backend was initialised.
void apply_view(const ViewPrefs& prefs, float content_scale);
// The colour for error text in the current theme.
bool light_theme_active();

}  // namespace krause::ui
