// The main loop. The UI thread owns GL and the ImGui context; engine jobs run on their own
// threads and are only read through snapshots in update_studio().
#include "ui/studio_app.h"

#include "ui/actions.h"
#include "ui/panels.h"
#include "ui/preferences.h"
#include "ui/recent_files.h"
#include "ui/script.h"

#include <GLFW/glfw3.h>
#include <backends/imgui_impl_glfw.h>
#include <backends/imgui_impl_opengl3.h>
#include <imgui.h>

#include <cfloat>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <thread>

namespace krause::ui {

namespace {

using Clock = std::chrono::steady_clock;

// A frame every ~16.7 ms at most, so that an idle or unsynchronised display (Xvfb) does not spin
// a core that training needs.
constexpr double kMinFrameMs = 1000.0 / 60.0;
constexpr double kIdleWaitS = 0.25;

struct GlContext {
    int major, minor;
    bool core;
    const char* glsl;
};
// 3.3 core first; 3.0 for older drivers. Mesa's llvmpipe (Xvfb) offers both.
constexpr GlContext kContexts[] = {{3, 3, true, "#version 330 core"},
                                   {3, 0, false, "#version 130"}};

void glfw_error(int code, const char* description) {
    std::fprintf(stderr, "krause-studio: GLFW error %d: %s\n", code, description);
}

GLFWwindow* open_window(const StudioOptions& options, const char** glsl) {
    for (const GlContext& c : kContexts) {
        glfwDefaultWindowHints();
        // On a high-DPI monitor the window grows with the content scale, like the text does.
        glfwWindowHint(GLFW_SCALE_TO_MONITOR, GLFW_TRUE);
        glfwWindowHint(GLFW_CONTEXT_VERSION_MAJOR, c.major);
        glfwWindowHint(GLFW_CONTEXT_VERSION_MINOR, c.minor);
        if (c.core) {
            glfwWindowHint(GLFW_OPENGL_PROFILE, GLFW_OPENGL_CORE_PROFILE);
            glfwWindowHint(GLFW_OPENGL_FORWARD_COMPAT, GLFW_TRUE);
        }
        GLFWwindow* window =
            glfwCreateWindow(options.width, options.height, "Krause Studio", nullptr, nullptr);
        if (window) {
            *glsl = c.glsl;
            return window;
        }
    }
    return nullptr;
}

double ms_since(Clock::time_point start) {
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

}  // namespace

int run_studio(const StudioOptions& options) {
    std::optional<ScriptRunner> runner;
    if (!options.script.empty()) {
        try {
            runner.emplace(options.script, load_script(options.script),
                           options.screenshots.empty() ? "studio-shots" : options.screenshots);
        } catch (const ScriptError& e) {
            std::fprintf(stderr, "krause-studio: %s\n", e.what());
            return 2;
        }
    }

    glfwSetErrorCallback(glfw_error);
    if (!glfwInit()) {
        std::fprintf(stderr,
                     "krause-studio: cannot open a window (no display?). Set DISPLAY, run under "
                     "xvfb-run, or use the command line: krause sample --help\n");
        return 1;
    }
    const char* glsl = nullptr;
    GLFWwindow* window = open_window(options, &glsl);
    if (!window) {
        std::fprintf(stderr, "krause-studio: no OpenGL 3 context is available on this display\n");
        glfwTerminate();
        return 1;
    }
    glfwMakeContextCurrent(window);
    glfwSwapInterval(runner ? 0 : 1);

    IMGUI_CHECKVERSION();
    ImGui::CreateContext();
    ImGuiIO& io = ImGui::GetIO();
    // Scripted runs must not depend on (or change) a user's saved layout.
    std::string ini_path;
    if (runner) {
        io.IniFilename = nullptr;
    } else if (!config_dir().empty()) {
        std::error_code ec;
        std::filesystem::create_directories(config_dir(), ec);
        ini_path = (std::filesystem::path(config_dir()) / "imgui.ini").string();
        io.IniFilename = ini_path.c_str();
    }
    ImGui_ImplGlfw_InitForOpenGL(window, true);
    ImGui_ImplOpenGL3_Init(glsl);

    // Leave a core to drawing so that the window stays responsive while jobs compute.
    const unsigned cores = std::thread::hardware_concurrency();
    set_compute_threads(cores > 1 ? static_cast<int>(cores) - 1 : 1);
    auto state = std::make_unique<StudioState>();
    init_studio(*state, options.checkpoint);
    // Scripted runs look the same on every machine: the defaults, not the user's preferences.
    if (!runner) state->view = load_view_prefs();
    glfwSetWindowUserPointer(window, state.get());
    glfwSetWindowContentScaleCallback(window, [](GLFWwindow* w, float x, float) {
        auto* s = static_cast<StudioState*>(glfwGetWindowUserPointer(w));
        s->content_scale = x;
        s->view_changed = true;
    });
    float scale_y = 1;
    glfwGetWindowContentScale(window, &state->content_scale, &scale_y);

    while (!glfwWindowShouldClose(window)) {
        const Clock::time_point start = Clock::now();
        const bool busy = runner || any_job_running(*state);
        if (busy) {
            glfwPollEvents();
        } else {
            glfwWaitEventsTimeout(kIdleWaitS);
        }
        const Clock::time_point work_start = Clock::now();

        update_studio(*state);
        if (runner) runner->before_frame(*state);
        if (state->view_changed) {
            apply_view(state->view, state->content_scale);
            state->view_changed = false;
        }

        ImGui_ImplOpenGL3_NewFrame();
        ImGui_ImplGlfw_NewFrame();
        // A script drives the UI without the mouse; a pointer resting over a widget would put
        // tooltips into the screenshots.
        if (runner) io.MousePos = ImVec2(-FLT_MAX, -FLT_MAX);
        ImGui::NewFrame();
        draw_studio(*state);
        ImGui::Render();

        int width = 0, height = 0;
        glfwGetFramebufferSize(window, &width, &height);
        glViewport(0, 0, width, height);
        glClearColor(0.08f, 0.08f, 0.10f, 1.0f);
        glClear(GL_COLOR_BUFFER_BIT);
        ImGui_ImplOpenGL3_RenderDrawData(ImGui::GetDrawData());
        const bool captured = runner && runner->after_render(*state, width, height);
        const double work_ms = ms_since(work_start);
        glfwSwapBuffers(window);

        const double elapsed = ms_since(start);
        if (elapsed < kMinFrameMs) {
            std::this_thread::sleep_for(
                std::chrono::duration<double, std::milli>(kMinFrameMs - elapsed));
        }
        // Frames that only waited for input say nothing about responsiveness.
        if (busy) {
            FrameTimes& f = state->frames;
            f.frame_ms.push_back(static_cast<float>(ms_since(start)));
            f.work_ms.push_back(static_cast<float>(work_ms));
            f.training.push_back(training_running(*state));
            f.excluded.push_back(captured);
        }
        if (runner && runner->finished()) break;
        if (state->quit_requested) glfwSetWindowShouldClose(window, GLFW_TRUE);
    }

    const int status = runner ? runner->exit_code() : 0;
    // Jobs are joined and textures freed while the GL context still exists.
    state.reset();
    ImGui_ImplOpenGL3_Shutdown();
    ImGui_ImplGlfw_Shutdown();
    ImGui::DestroyContext();
    glfwDestroyWindow(window);
    glfwTerminate();
    return status;
}

}  // namespace krause::ui
