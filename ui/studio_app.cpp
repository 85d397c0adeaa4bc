// The main loop. The UI thread owns GL and the ImGui context; engine jobs run on their own
// threads and are only read through snapshots in update_studio().
#include "ui/studio_app.h"

#include "training/threads.h"
#include "ui/actions.h"
#include "ui/panels.h"
#include "ui/preferences.h"
#include "ui/recent_files.h"
#include "ui/script.h"

#include <GLFW/glfw3.h>
#include <backends/imgui_impl_glfw.h>
#include <backends/imgui_impl_opengl3.h>
#include <imgui.h>

#include <algorithm>
#include <cfloat>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <thread>

namespace krause::ui {

namespace {

using Clock = std::chrono::steady_clock;

// Drawing is not free: without a GPU (Xvfb, llvmpipe) a 1600x1000 frame costs 10-25 ms of CPU,
// so at 60 fps the window alone would take more than one of two cores from a sampling job. A
// frame is therefore drawn only when something changed (input, a new job snapshot, a job that
// started or ended), at most 60 times a second, and at most 30 while a job runs.
constexpr double kMinFrameMs = 1000.0 / 60.0;
constexpr double kJobFrameMs = 1000.0 / 30.0;
constexpr double kIdleWaitS = 0.25;
constexpr double kRefreshMs = 500.0;  // redraw at least this often while jobs run (clocks, ETA)
constexpr int kInputFrames = 3;       // frames drawn after an input event (hover, release)

// What the GLFW callbacks report to the loop.
struct LoopSignals {
    StudioState* state = nullptr;
    int input_frames = kInputFrames;
};

LoopSignals* signals_of(GLFWwindow* window) {
    return static_cast<LoopSignals*>(glfwGetWindowUserPointer(window));
}

void on_input(GLFWwindow* window) {
    signals_of(window)->input_frames = kInputFrames;
}

// Installed before Dear ImGui's, which chains to them.
void install_input_callbacks(GLFWwindow* window) {
    glfwSetCursorPosCallback(window, [](GLFWwindow* w, double, double) { on_input(w); });
    glfwSetMouseButtonCallback(window, [](GLFWwindow* w, int, int, int) { on_input(w); });
    glfwSetScrollCallback(window, [](GLFWwindow* w, double, double) { on_input(w); });
    glfwSetKeyCallback(window, [](GLFWwindow* w, int, int, int, int) { on_input(w); });
    glfwSetCharCallback(window, [](GLFWwindow* w, unsigned) { on_input(w); });
    glfwSetCursorEnterCallback(window, [](GLFWwindow* w, int) { on_input(w); });
    glfwSetWindowFocusCallback(window, [](GLFWwindow* w, int) { on_input(w); });
    glfwSetFramebufferSizeCallback(window, [](GLFWwindow* w, int, int) { on_input(w); });
    glfwSetWindowRefreshCallback(window, [](GLFWwindow* w) { on_input(w); });
    glfwSetWindowContentScaleCallback(window, [](GLFWwindow* w, float x, float) {
        LoopSignals* signals = signals_of(w);
        signals->state->content_scale = x;
        signals->state->view_changed = true;
        on_input(w);
    });
}

template <class Snapshot>
void mix_job(size_t& stamp, const std::unique_ptr<Job<Snapshot>>& job) {
    const void* latest = job ? static_cast<const void*>(job->snapshot().get()) : nullptr;
    stamp = stamp * 1000003u ^ reinterpret_cast<uintptr_t>(latest);
    stamp = stamp * 31u + (job ? static_cast<size_t>(job->state()) + 1 : 0);
}

// Changes whenever a job publishes a snapshot, starts or ends.
size_t activity_stamp(const StudioState& s) {
    size_t stamp = s.retired.size();
    for_each_job(s, [&](const auto& job) { mix_job(stamp, job); });
    return stamp;
}

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
            runner->set_named_only(options.named_shots_only);
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
    LoopSignals signals;
    glfwSetWindowUserPointer(window, &signals);
    install_input_callbacks(window);

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
    signals.state = state.get();
    init_studio(*state, options.checkpoint);
    // Scripted runs look the same on every machine: the defaults, not the user's preferences.
    if (!runner) state->view = load_view_prefs();
    float scale_y = 1;
    glfwGetWindowContentScale(window, &state->content_scale, &scale_y);

    size_t drawn_stamp = 0;
    std::optional<Clock::time_point> last_draw;
    bool last_busy = false, last_captured = false;
    int idle_turns = 0;
    double last_work_ms = 0;
    Clock::time_point last_turn = Clock::now();
    while (!glfwWindowShouldClose(window)) {
        const bool jobs = any_job_running(*state);
        const double frame_ms = jobs ? kJobFrameMs : kMinFrameMs;
        // The frame cap; a script, which polls instead of waiting, also paces the turns in which
        // nothing is drawn.
        double since = last_draw ? ms_since(*last_draw) : 1e9;
        if (runner) since = std::min(since, ms_since(last_turn));
        if (since < frame_ms) {
            std::this_thread::sleep_for(
                std::chrono::duration<double, std::milli>(frame_ms - since));
        }
        last_turn = Clock::now();
        if (runner) {
            glfwPollEvents();
        } else {
            // Wake for input, or to look for job news once a frame while jobs run.
            glfwWaitEventsTimeout(jobs ? frame_ms / 1000.0 : kIdleWaitS);
        }

        update_studio(*state);
        if (runner) runner->before_frame(*state);
        const size_t stamp = activity_stamp(*state);
        // A chart export is written by the frames that draw the chart.
        const ChartExport& chart = state->train.chart_export;
        const bool exporting = chart.requested || (chart.png && !chart.png->done);
        const bool draw = signals.input_frames > 0 || stamp != drawn_stamp || exporting ||
                          state->view_changed || (runner && !runner->waiting()) ||
                          (jobs && (!last_draw || ms_since(*last_draw) >= kRefreshMs)) ||
                          !last_draw;
        if (!draw) {
            ++idle_turns;
            continue;
        }
        if (signals.input_frames > 0) --signals.input_frames;
        drawn_stamp = stamp;
        if (state->view_changed) {
            apply_view(state->view, state->content_scale);
            state->view_changed = false;
        }

        const Clock::time_point start = Clock::now();
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
        const ImVec4 bg = ImGui::GetStyle().Colors[ImGuiCol_WindowBg];
        glClearColor(bg.x, bg.y, bg.z, 1.0f);
        glClear(GL_COLOR_BUFFER_BIT);
        ImGui_ImplOpenGL3_RenderDrawData(ImGui::GetDrawData());
        const bool captured = runner && runner->after_render(*state, width, height);
        const double work_ms = ms_since(start);
        glfwSwapBuffers(window);

        // While jobs run: the time since the previous frame when this one was due at once (no
        // turn in between found nothing to draw), which stays near the frame cap as long as
        // drawing keeps up with the snapshots. Waiting for news or input says nothing.
        const bool busy = runner || any_job_running(*state);
        if (busy && last_busy && last_draw && idle_turns == 0) {
            FrameTimes& f = state->frames;
            f.frame_ms.push_back(static_cast<float>(
                std::chrono::duration<double, std::milli>(start - *last_draw).count()));
            f.work_ms.push_back(static_cast<float>(last_work_ms));  // the previous frame's
            f.training.push_back(training_running(*state));
            f.excluded.push_back(last_captured);  // that frame's time went into a screenshot
        }
        last_draw = start;
        last_busy = busy;
        last_captured = captured;
        last_work_ms = work_ms;
        idle_turns = 0;
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
