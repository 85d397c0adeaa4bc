// View preferences: a small JSON file beside the recent-file list. A missing or damaged file only
// means the defaults, so nothing here throws.
#include "ui/preferences.h"

#include "ui/recent_files.h"

#include <backends/imgui_impl_opengl3.h>
#include <imgui.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

namespace krause::ui {

namespace {

namespace fs = std::filesystem;
constexpr const char* kPrefsFile = "view.json";
constexpr float kBaseFontPixels = 13.0f;  // the size Dear ImGui's built-in font is drawn for

}  // namespace

ViewPrefs load_view_prefs() {
    ViewPrefs prefs;
    const std::string dir = config_dir();
    if (dir.empty()) return prefs;
    std::ifstream in(fs::path(dir) / kPrefsFile);
    if (!in) return prefs;
    const auto j = nlohmann::json::parse(in, nullptr, false);
    if (!j.is_object()) return prefs;
    const auto scale = j.find("font_scale");
    if (scale != j.end() && scale->is_number()) {
        const float v = scale->get<float>();
        if (v == 0 || (v >= kMinFontScale && v <= kMaxFontScale)) prefs.font_scale = v;
    }
    const auto theme = j.find("theme");
    if (theme != j.end() && theme->is_string()) prefs.light = theme->get<std::string>() == "light";
    return prefs;
}

void save_view_prefs(const ViewPrefs& prefs) {
    const std::string dir = config_dir();
    if (dir.empty()) return;
    std::error_code ec;
    fs::create_directories(dir, ec);
    const nlohmann::json j = {{"font_scale", prefs.font_scale},
                              {"theme", prefs.light ? "light" : "dark"}};
    std::ofstream(fs::path(dir) / kPrefsFile, std::ios::trunc) << j.dump(2) << '\n';
}

float effective_scale(const ViewPrefs& prefs, float content_scale) {
    float scale = prefs.font_scale > 0 ? prefs.font_scale : content_scale;
    if (!(scale > 0)) scale = 1.0f;
    return std::clamp(scale, kMinFontScale, kMaxFontScale);
}

void apply_view(const ViewPrefs& prefs, float content_scale) {
    const float scale = effective_scale(prefs, content_scale);
    ImGuiStyle style;
    if (prefs.light) {
        ImGui::StyleColorsLight(&style);
    } else {
        ImGui::StyleColorsDark(&style);
    }
    style.ScaleAllSizes(scale);
    ImGui::GetStyle() = style;

    // The built-in font rasterised at the scaled size stays sharp, where a global scale factor
    // would only stretch the 13-pixel glyphs.
    ImGuiIO& io = ImGui::GetIO();
    io.Fonts->Clear();
    ImFontConfig font;
    font.SizePixels = std::round(kBaseFontPixels * scale);
    io.Fonts->AddFontDefault(&font);
    io.FontGlobalScale = 1.0f;
    ImGui_ImplOpenGL3_DestroyFontsTexture();
    ImGui_ImplOpenGL3_CreateFontsTexture();
}

bool light_theme_active() {
    const ImVec4 bg = ImGui::GetStyle().Colors[ImGuiCol_WindowBg];
    return 0.299f * bg.x + 0.587f * bg.y + 0.114f * bg.z > 0.5f;
}

}  // namespace krause::ui
