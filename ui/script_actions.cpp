// The script verbs as one table: each verb's usage, the check of its words before the run, and
// what it does to the studio and then waits for. Verbs go through the same functions as the
// panels' buttons, so a script exercises the paths a user takes.
#include "training/options.h"
#include "ui/actions.h"
#include "ui/data_folder.h"
#include "ui/dynamics_view.h"
#include "ui/panels.h"
#include "ui/script.h"
#include "ui/settings.h"

#include <GLFW/glfw3.h>
#include <backends/imgui_impl_glfw.h>
#include <imgui.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <memory>

namespace krause::ui {

namespace {

using Words = std::vector<std::string>;
using Wait = ScriptWait;

double seconds_arg(const Words& w, size_t i, double fallback) {
    return w.size() > i ? std::strtod(w[i].c_str(), nullptr) : fallback;
}

int int_arg(const Words& w, size_t i) {
    return static_cast<int>(std::strtol(w[i].c_str(), nullptr, 10));
}

bool is_number(const std::string& word, bool allow_fraction) {
    if (word.empty()) return false;
    char* end = nullptr;
    if (allow_fraction) {
        std::strtod(word.c_str(), &end);
    } else {
        std::strtoll(word.c_str(), &end, 10);
    }
    return *end == '\0';
}

// "" when words first..last are integers (and the optional last one a number, when `timeout`).
std::string integers(const Words& w, size_t first, bool timeout = false) {
    for (size_t i = first; i < w.size(); ++i) {
        const bool fraction = timeout && i + 1 == w.size() && i > first;
        if (!is_number(w[i], fraction)) {
            return "'" + w[i] + "' is not " + (fraction ? "a number" : "an integer");
        }
    }
    return "";
}

// The jobs `wait` knows: whether one was started, and whether it is still busy.
struct WaitJob {
    const char* name;
    bool (*exists)(const StudioState&);
    bool (*busy)(const StudioState&);
    std::string (*failure)(const StudioState&) = nullptr;  // why it failed, "" when it did not
};
bool always(const StudioState&) {
    return true;
}
const WaitJob kWaitJobs[] = {
    {"open", always, [](const StudioState& s) { return s.model.opening != nullptr; }},
    {"open-compare", always,
     [](const StudioState& s) { return s.compare.model.opening != nullptr; }},
    {"data", always, [](const StudioState& s) { return s.data.loading != nullptr; }},
    {"sample", [](const StudioState& s) { return s.sample.job != nullptr; },
     [](const StudioState& s) { return running(s.sample.job); }},
    {"complete", [](const StudioState& s) { return s.complete.job != nullptr; },
     [](const StudioState& s) { return running(s.complete.job); }},
    {"inspect", [](const StudioState& s) { return s.inspect.job != nullptr; },
     [](const StudioState& s) {
         return running(s.inspect.job) || running(s.compare.inspect) ||
                running(s.inspect.measures) || running(s.compare.measures);
     }},
    {"maps", [](const StudioState& s) { return s.inspect.job != nullptr; },
     [](const StudioState& s) { return running(s.inspect.job) || running(s.compare.inspect); }},
    {"compare", [](const StudioState& s) { return s.compare.inspect != nullptr; },
     [](const StudioState& s) {
         return running(s.compare.inspect) || running(s.compare.measures);
     }},
    {"compare-sample", [](const StudioState& s) { return s.compare.sample_a != nullptr; },
     [](const StudioState& s) {
         return running(s.compare.sample_a) || running(s.compare.sample_b);
     }},
    {"train", [](const StudioState& s) { return s.train.job != nullptr; },
     [](const StudioState& s) { return running(s.train.job); }},
    {"fetch", [](const StudioState& s) { return !s.folders.fetch_kind.empty(); },
     [](const StudioState& s) { return s.folders.fetch != nullptr; }},
    // The Dynamics view's jobs for the open image, started when the view is shown.
    {"dynamics", always,
     [](const StudioState& s) {
         std::string failure;
         return dynamics_pending(s, &failure);
     },
     [](const StudioState& s) {
         std::string failure;
         dynamics_pending(s, &failure);
         return failure.empty() ? failure : "dynamics: " + failure;
     }},
};
const WaitJob* find_wait_job(const std::string& name) {
    for (const auto& j : kWaitJobs) {
        if (name == j.name) return &j;
    }
    return nullptr;
}

// A step that is done once `act` returned true; its message otherwise.
template <class Act>
ScriptStart act(Act&& action) {
    ScriptStart s;
    if (!action(&s.error) && s.error.empty()) s.error = "failed";
    return s;
}

ScriptStart waiting(ScriptWaiter waiter, double timeout_s = 300) {
    ScriptStart s;
    s.waiter = std::move(waiter);
    s.timeout_s = timeout_s;
    return s;
}

ScriptWaiter model_opened(bool second) {
    return [second](StudioState& s, std::string* message) {
        const ModelSlot& m = second ? s.compare.model : s.model;
        if (m.opening) return Wait::Pending;
        if (!m.error.empty()) {
            *message = "cannot open the model: " + m.error;
            return Wait::Failed;
        }
        return Wait::Ready;
    };
}

ScriptWaiter stopped_train() {
    return [](StudioState& s, std::string*) {
        return running(s.train.job) ? Wait::Pending : Wait::Ready;
    };
}

ScriptStart open_main(StudioState& state, const Words& w) {
    open_model(state, state.model, w[1]);
    return waiting(model_opened(false), 120);
}

ScriptStart open_second(StudioState& state, const Words& w) {
    open_model(state, state.compare.model, w[1]);
    return waiting(model_opened(true), 120);
}

std::string check_tab(const Words& w) {
    Tab tab;
    return parse_tab(w[1], &tab) ? "" : "unknown tab '" + w[1] + "'";
}

ScriptStart show_tab(StudioState& state, const Words& w) {
    Tab tab;
    parse_tab(w[1], &tab);
    select_tab(state, tab);
    return {};
}

std::string check_set(const Words& w) {
    std::string error;
    return check_setting(w[1], w[2], &error) ? "" : error;
}

ScriptStart set_value(StudioState& state, const Words& w) {
    return act([&](std::string* e) { return apply_setting(state, w[1], w[2], e); });
}

ScriptStart sample_start(StudioState& state, const Words&) {
    return act([&](std::string* e) { return start_sample(state, e); });
}

ScriptStart sample_stop(StudioState& state, const Words&) {
    if (state.sample.job) state.sample.job->request_stop();
    return waiting([](StudioState& s, std::string*) {
        return running(s.sample.job) ? Wait::Pending : Wait::Ready;
    });
}

ScriptStart save_png(StudioState& state, const Words& w) {
    return act([&](std::string* e) { return save_sample_png(state, w[1], e); });
}

ScriptStart load_test_set(StudioState& state, const Words&) {
    load_data(state);
    return waiting([](StudioState& s, std::string* message) {
        if (s.data.loading) return Wait::Pending;
        if (!s.data.error.empty()) {
            *message = "cannot load the data set: " + s.data.error;
            return Wait::Failed;
        }
        return Wait::Ready;
    });
}

ScriptStart data_folder(StudioState& state, const Words& w) {
    return act([&](std::string* e) { return set_data_folder(state, w[1], e); });
}

std::string check_open_close(const Words& w) {
    return w[1] == "open" || w[1] == "close" ? "" : "expects open or close";
}

ScriptStart data_window(StudioState& state, const Words& w) {
    state.folders.window_open = w[1] != "close";
    return {};
}

std::string check_data_kind(const Words& w) {
    for (const auto& kind : dataset_kind_choices()) {
        if (w[1] == kind) return "";
    }
    return "unknown data set '" + w[1] + "'";
}

ScriptStart data_fetch(StudioState& state, const Words& w) {
    if (w.size() > 2) state.folders.base_url = w[2];
    return act([&](std::string* e) { return start_data_fetch(state, w[1], e); });
}

ScriptStart data_fetch_stop(StudioState& state, const Words&) {
    if (state.folders.fetch) state.folders.fetch->request_stop();
    return {};
}

// A bundled model by name, into the main slot or the Compare panel's.
ScriptStart open_named_bundled(StudioState& state, const std::string& name, bool second) {
    std::string names;
    for (const auto& m : state.bundled) {
        if (m.name == name) {
            open_model(state, second ? state.compare.model : state.model, m.path);
            return waiting(model_opened(second), 120);
        }
        names += " " + m.name;
    }
    return act([&](std::string* e) {
        *e = "no bundled model '" + name + "' (bundled:" + names + ")";
        return false;
    });
}

ScriptStart open_bundled(StudioState& state, const Words& w) {
    return open_named_bundled(state, w[1], false);
}

ScriptStart open_compare_bundled(StudioState& state, const Words& w) {
    return open_named_bundled(state, w[1], true);
}

ScriptStart open_compare_twin(StudioState& state, const Words&) {
    const auto twins = bundled_twins(state);
    if (twins.empty()) {
        return act([](std::string* e) {
            *e = "the open model has no bundled twin";
            return false;
        });
    }
    return open_named_bundled(state, twins.front()->name, true);
}

ScriptStart complete_start(StudioState& state, const Words&) {
    return act([&](std::string* e) { return start_complete(state, e); });
}

constexpr const char* kSources[] = {"sample",    "complete",  "data",   "preview",
                                    "compare-a", "compare-b", "inspect"};

std::string check_click(const Words& w) {
    if (std::find_if(std::begin(kSources), std::end(kSources),
                     [&](const char* n) { return w[1] == n; }) == std::end(kSources)) {
        return "unknown image source '" + w[1] + "'";
    }
    return integers(w, 2);
}

ScriptStart click(StudioState& state, const Words& w) {
    const int channel = w.size() > 5 ? int_arg(w, 5) : state.inspect.channel;
    return act([&](std::string* e) {
        return inspect_pixel(state, w[1], int_arg(w, 2), int_arg(w, 3), int_arg(w, 4), channel, e);
    });
}

std::string check_integers(const Words& w) {
    return integers(w, 1);
}

ScriptStart inspect_layer(StudioState& state, const Words& w) {
    InspectState& in = state.inspect;
    in.layer = int_arg(w, 1);
    in.head = int_arg(w, 2);
    state.compare.layer = in.layer;
    if (in.maps.ready() && (in.layer < 0 || in.layer >= in.maps.layers() || in.head < 0 ||
                            in.head >= in.maps.heads())) {
        return act([&](std::string* e) {
            *e = "no map for layer " + w[1] + ", head " + w[2];
            return false;
        });
    }
    return {};
}

ScriptStart compare_sample(StudioState& state, const Words&) {
    return act([&](std::string* e) { return start_compare_samples(state, e); });
}

ScriptStart train_start(StudioState& state, const Words&) {
    return act([&](std::string* e) { return start_train(state, e); });
}

ScriptStart train_pause(StudioState& state, const Words& w) {
    return act([&](std::string* e) {
        if (!running(state.train.job)) {
            *e = "no training is running";
            return false;
        }
        state.train.job->set_paused(w[0] == "train-pause");
        return true;
    });
}

ScriptStart train_stop(StudioState& state, const Words&) {
    if (state.train.job) state.train.job->request_stop();
    return waiting(stopped_train());
}

std::string check_wait(const Words& w) {
    if (!find_wait_job(w[1])) return "cannot wait for '" + w[1] + "'";
    return w.size() == 3 && !is_number(w[2], true) ? "timeout must be a number" : "";
}

ScriptStart wait_for_job(StudioState&, const Words& w) {
    const WaitJob* job = find_wait_job(w[1]);
    return waiting(
        [job](StudioState& s, std::string* message) {
            if (!job->exists(s)) {
                *message = "no " + std::string(job->name) + " job was started";
                return Wait::Failed;
            }
            if (job->failure) {
                *message = job->failure(s);
                if (!message->empty()) return Wait::Failed;
            }
            const bool busy = job->busy(s);
            if (busy) *message = std::string(job->name) + " still running";
            return busy ? Wait::Pending : Wait::Ready;
        },
        seconds_arg(w, 2, 300.0));
}

std::string check_count(const Words& w) {
    return integers(w, 1, /*timeout=*/true).empty()
               ? ""
               : "expects a step count and an optional timeout in seconds";
}

ScriptStart wait_training(StudioState&, const Words& w) {
    const long long target = std::strtoll(w[1].c_str(), nullptr, 10);
    const bool evals = w[0] == "wait-evals";
    return waiting(
        [target, evals](StudioState& s, std::string* message) {
            if (!s.train.job) {
                *message = "no training was started";
                return Wait::Failed;
            }
            const auto& shown = s.train.shown;
            const long long reached = !shown  ? 0
                                      : evals ? static_cast<long long>(shown->test_curve.size())
                                              : shown->step;
            if (reached >= target) return Wait::Ready;
            *message = std::string(evals ? "evaluations " : "step ") + std::to_string(reached);
            if (s.train.job->done()) {
                *message = "training ended (" + std::string(to_string(s.train.job->state())) +
                           ") at " + *message + ": " + s.train.job->error();
                return Wait::Failed;
            }
            return Wait::Pending;
        },
        seconds_arg(w, 2, 600.0));
}

ScriptStart move_pixel(StudioState& state, const Words& w) {
    return act([&](std::string* e) {
        return move_inspected_pixel(state, int_arg(w, 1), int_arg(w, 2), e);
    });
}

std::string check_export_png(const Words& w) {
    return is_number(w[2], false) ? "" : "expects an integer scale";
}

ScriptStart export_image(StudioState& state, const Words& w) {
    return act([&](std::string* e) { return export_png(state, w[1], int_arg(w, 2), w[3], e); });
}

std::string check_canvas(const Words& w) {
    const size_t want = w[1] == "clear"  ? 2
                        : w[1] == "load" ? 3
                        : w[1] == "dot"  ? 4
                        : w[1] == "line" ? 6
                                         : 0;
    if (want == 0) return "unknown canvas action '" + w[1] + "' (clear, load, dot, line)";
    if (w.size() != want) return "wrong number of arguments for canvas " + w[1];
    return w[1] == "load" ? "" : integers(w, 2);
}

ScriptStart canvas_draw(StudioState& state, const Words& w) {
    return act([&](std::string* e) {
        if (!state.model.loaded()) {
            *e = "open a model first: the canvas takes its image size";
            return false;
        }
        const ModelSummary& m = state.model.summary;
        PromptCanvas& canvas = state.complete.canvas;
        canvas.reshape(m.image_height, m.image_width, m.image_channels);
        state.complete.drawn = true;
        if (w[1] == "clear") {
            canvas.clear();
        } else if (w[1] == "load") {
            return canvas.load_png(w[2], e);
        } else if (w[1] == "dot") {
            canvas.paint(int_arg(w, 2), int_arg(w, 3));
        } else {
            canvas.paint_line(int_arg(w, 2), int_arg(w, 3), int_arg(w, 4), int_arg(w, 5));
        }
        return true;
    });
}

ScriptStart open_run(StudioState& state, const Words& w) {
    return act([&](std::string* e) { return add_run_curves(state, w[1], e); });
}

ScriptStart export_chart(StudioState& state, const Words& w) {
    if (!state.train.shown && state.train.runs.empty()) {
        return act([](std::string* e) {
            *e = "no training curves to export (start a run or open-run one)";
            return false;
        });
    }
    request_chart_export(state, w[1]);
    select_tab(state, Tab::Train);
    return waiting(
        [](StudioState& s, std::string* message) {
            const ChartExport& e = s.train.chart_export;
            if (e.requested) return Wait::Pending;
            if (!e.png) {
                *message = e.message;
                return Wait::Failed;
            }
            if (!e.png->done) return Wait::Pending;
            if (!e.png->error.empty()) {
                *message = e.png->error;
                return Wait::Failed;
            }
            return Wait::Ready;
        },
        30);
}

ScriptStart frames(StudioState&, const Words& w) {
    auto left = std::make_shared<int>(int_arg(w, 1));
    return waiting(
        [left](StudioState&, std::string*) { return --*left <= 0 ? Wait::Ready : Wait::Pending; });
}

std::string check_seconds(const Words& w) {
    return is_number(w[1], true) ? "" : "'" + w[1] + "' is not a number";
}

ScriptStart sleep_for(StudioState&, const Words& w) {
    using Clock = std::chrono::steady_clock;
    const double seconds = seconds_arg(w, 1, 0);
    const auto until = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                          std::chrono::duration<double>(seconds));
    return waiting(
        [until](StudioState&, std::string*) {
            return Clock::now() >= until ? Wait::Ready : Wait::Pending;
        },
        seconds + 60);
}

// `key CHORD`: modifiers joined to a key by '+' (ctrl+o). The chord takes the keyboard's way in:
// Dear ImGui's GLFW backend gets the key events GLFW would send (modifiers first), sets the keys
// and modifiers that the next frame reads, and a printable key without Ctrl, Alt or Super also
// types its character. The keys are released, in reverse order, once a frame has seen them down.
struct KeyName {
    const char* name;
    int key;
    unsigned character;  // what the key types; 0: nothing
};
constexpr KeyName kKeys[] = {
    {"space", GLFW_KEY_SPACE, ' '},
    {"tab", GLFW_KEY_TAB, 0},
    {"enter", GLFW_KEY_ENTER, 0},
    {"escape", GLFW_KEY_ESCAPE, 0},
    {"backspace", GLFW_KEY_BACKSPACE, 0},
    {"delete", GLFW_KEY_DELETE, 0},
    {"left", GLFW_KEY_LEFT, 0},
    {"right", GLFW_KEY_RIGHT, 0},
    {"up", GLFW_KEY_UP, 0},
    {"down", GLFW_KEY_DOWN, 0},
    {"home", GLFW_KEY_HOME, 0},
    {"end", GLFW_KEY_END, 0},
};
struct ModifierName {
    const char* name;
    int key;  // the left one of the pair
    int bit;
};
constexpr ModifierName kModifiers[] = {{"ctrl", GLFW_KEY_LEFT_CONTROL, GLFW_MOD_CONTROL},
                                       {"shift", GLFW_KEY_LEFT_SHIFT, GLFW_MOD_SHIFT},
                                       {"alt", GLFW_KEY_LEFT_ALT, GLFW_MOD_ALT},
                                       {"super", GLFW_KEY_LEFT_SUPER, GLFW_MOD_SUPER}};

struct Chord {
    std::vector<const ModifierName*> modifiers;  // in the order they are pressed
    int key = GLFW_KEY_UNKNOWN;
    unsigned character = 0;
};

// Letters and digits by themselves, the rest by name; "" when fine.
std::string parse_chord(const std::string& text, Chord* chord) {
    std::vector<std::string> parts;
    size_t begin = 0;
    for (size_t plus; (plus = text.find('+', begin)) != std::string::npos; begin = plus + 1) {
        parts.push_back(text.substr(begin, plus - begin));
    }
    parts.push_back(text.substr(begin));
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
        const auto it = std::find_if(std::begin(kModifiers), std::end(kModifiers),
                                     [&](const ModifierName& m) { return parts[i] == m.name; });
        if (it == std::end(kModifiers)) {
            return "unknown modifier '" + parts[i] + "' (ctrl, shift, alt, super)";
        }
        chord->modifiers.push_back(it);
    }
    const std::string& key = parts.back();
    if (key.size() == 1 && std::islower(static_cast<unsigned char>(key[0]))) {
        chord->key = GLFW_KEY_A + (key[0] - 'a');
        chord->character = static_cast<unsigned>(key[0]);
    } else if (key.size() == 1 && std::isdigit(static_cast<unsigned char>(key[0]))) {
        chord->key = GLFW_KEY_0 + (key[0] - '0');
        chord->character = static_cast<unsigned>(key[0]);
    } else {
        const auto it = std::find_if(std::begin(kKeys), std::end(kKeys),
                                     [&](const KeyName& k) { return key == k.name; });
        if (it == std::end(kKeys)) {
            std::string names = "a-z, 0-9";
            for (const KeyName& k : kKeys) names += std::string(", ") + k.name;
            return "unknown key '" + key + "' (" + names + ")";
        }
        chord->key = it->key;
        chord->character = it->character;
    }
    // Ctrl, Alt and Super keep a key from typing; Shift types capitals, and since what it does
    // to other keys depends on the keyboard layout, they type nothing here.
    bool shift = false, other = false;
    for (const ModifierName* m : chord->modifiers) {
        shift |= m->bit == GLFW_MOD_SHIFT;
        other |= m->bit != GLFW_MOD_SHIFT;
    }
    if (other) {
        chord->character = 0;
    } else if (shift && chord->character != ' ') {
        const bool letter = std::islower(static_cast<int>(chord->character)) != 0;
        chord->character = letter ? static_cast<unsigned>(std::toupper(key[0])) : 0;
    }
    return "";
}

std::string check_key(const Words& w) {
    Chord chord;
    return parse_chord(w[1], &chord);
}

ScriptStart press_key(StudioState&, const Words& w) {
    auto chord = std::make_shared<Chord>();
    parse_chord(w[1], chord.get());
    GLFWwindow* window = glfwGetCurrentContext();
    if (!window) {
        return act([](std::string* e) {
            *e = "no window receives keys";
            return false;
        });
    }
    int mods = 0;
    for (const ModifierName* m : chord->modifiers) {
        mods |= m->bit;
        ImGui_ImplGlfw_KeyCallback(window, m->key, glfwGetKeyScancode(m->key), GLFW_PRESS, mods);
    }
    ImGui_ImplGlfw_KeyCallback(window, chord->key, glfwGetKeyScancode(chord->key), GLFW_PRESS,
                               mods);
    if (chord->character != 0) ImGui_ImplGlfw_CharCallback(window, chord->character);
    const int pressed_before = ImGui::GetFrameCount();
    return waiting(
        [chord, window, mods, pressed_before](StudioState&, std::string*) {
            if (ImGui::GetFrameCount() <= pressed_before) return Wait::Pending;
            int held = mods;
            ImGui_ImplGlfw_KeyCallback(window, chord->key, glfwGetKeyScancode(chord->key),
                                       GLFW_RELEASE, held);
            for (auto m = chord->modifiers.rbegin(); m != chord->modifiers.rend(); ++m) {
                held &= ~(*m)->bit;
                ImGui_ImplGlfw_KeyCallback(window, (*m)->key, glfwGetKeyScancode((*m)->key),
                                           GLFW_RELEASE, held);
            }
            return Wait::Ready;
        },
        30);
}

ScriptStart nothing(StudioState&, const Words&) {
    return {};
}

ScriptStart quit_run(StudioState&, const Words&) {
    ScriptStart s;
    s.quit = true;
    return s;
}

}  // namespace

const std::vector<ScriptVerb>& script_verbs() {
    static const std::vector<ScriptVerb> verbs = {
        {"open", 1, 1, "open PATH            open a checkpoint as the main model (waits for it)",
         nullptr, open_main},
        {"open-bundled", 1, 1,
         "open-bundled NAME    open a bundled model as the Model tab's picker does", nullptr,
         open_bundled},
        {"open-compare", 1, 1, "open-compare PATH    open the Compare panel's second model (waits)",
         nullptr, open_second},
        {"open-compare-bundled", 1, 1,
         "open-compare-bundled NAME  open a bundled model as the Compare panel's menu does",
         nullptr, open_compare_bundled},
        {"open-compare-twin", 0, 0,
         "open-compare-twin    open the first twin the Compare panel offers (a button there)",
         nullptr, open_compare_twin},
        {"tab", 1, 1,
         "tab NAME             model | sample | complete | inspect | compare | train | dynamics",
         check_tab, show_tab},
        {"set", 2, 2, "set KEY VALUE        a panel setting, e.g. sample.count 16 (list below)",
         check_set, set_value},
        {"sample", 0, 0, "sample               start sampling with the sample.* settings", nullptr,
         sample_start},
        {"sample-stop", 0, 0, "sample-stop          stop sampling (waits for the job to end)",
         nullptr, sample_stop},
        {"save-png", 1, 1, "save-png PATH        write the sample grid as a PNG", nullptr,
         save_png},
        {"load-data", 0, 0,
         "load-data            load the test set of data.kind from the data folder (waits)",
         nullptr, load_test_set},
        {"data-folder", 1, 1,
         "data-folder PATH     make PATH the studio's data folder (remembered)", nullptr,
         data_folder},
        {"data-window", 1, 1, "data-window open|close  show or hide the Data folder window",
         check_open_close, data_window},
        {"data-fetch", 1, 2,
         "data-fetch KIND [URL]  download KIND into the data folder, from mirror URL if given",
         check_data_kind, data_fetch},
        {"data-fetch-stop", 0, 0, "data-fetch-stop      stop the download", nullptr,
         data_fetch_stop},
        {"complete", 0, 0, "complete             complete image data.index from complete.rows rows",
         nullptr, complete_start},
        {"click", 4, 5,
         "click SRC I ROW COL [CH]  inspect a pixel of image I of SRC: sample, complete, data,\n"
         "                     preview, compare-a, compare-b, inspect",
         check_click, click},
        {"inspect-layer", 2, 2, "inspect-layer L H    enlarge the map of layer L, head H",
         check_integers, inspect_layer},
        {"compare-sample", 0, 0, "compare-sample       sample both models of Compare with one seed",
         nullptr, compare_sample},
        {"train-start", 0, 0, "train-start          start training with the train.* settings",
         nullptr, train_start},
        {"train-pause", 0, 0, "train-pause          pause training", nullptr, train_pause},
        {"train-resume", 0, 0, "train-resume         resume training", nullptr, train_pause},
        {"train-stop", 0, 0, "train-stop           stop training (waits for the job to end)",
         nullptr, train_stop},
        {"wait", 1, 2,
         "wait JOB [SECONDS]   until JOB is no longer running: open, open-compare, data, sample,\n"
         "                     complete, inspect (maps and image averages), maps (the maps only),\n"
         "                     compare, compare-sample, train, fetch, dynamics (the Dynamics\n"
         "                     view's jobs for the open image, started when it is shown)",
         check_wait, wait_for_job},
        {"wait-steps", 1, 2, "wait-steps N [S]     until training reached step N", check_count,
         wait_training},
        {"wait-evals", 1, 2, "wait-evals N [S]     until training made N evaluations", check_count,
         wait_training},
        {"open-run", 1, 1,
         "open-run PATH        add a run folder's metrics.jsonl to the Train chart", nullptr,
         open_run},
        {"export-chart", 1, 1,
         "export-chart BASE    save the Train chart as BASE.png and BASE.csv (waits)", nullptr,
         export_chart},
        {"move-pixel", 2, 2, "move-pixel DR DC     move the inspected pixel (the arrow keys)",
         check_integers, move_pixel},
        {"key", 1, 1,
         "key CHORD            press and release keys as the keyboard does, e.g. ctrl+o, ctrl+q,\n"
         "                     space, tab, left, right, up, down (a-z, 0-9, enter, escape, ...;\n"
         "                     modifiers ctrl+, shift+, alt+, super+)",
         check_key, press_key},
        {"export-png", 3, 3,
         "export-png WHAT S PATH  save samples, completions, inspect-grid or inspect-map as PNG,\n"
         "                     each image pixel S x S",
         check_export_png, export_image},
        {"canvas", 1, 5,
         "canvas ACTION ...    the Complete panel's drawing: clear | load PATH | dot ROW COL |\n"
         "                     line ROW0 COL0 ROW1 COL1 (with the complete.brush settings)",
         check_canvas, canvas_draw},
        {"frames", 1, 1, "frames N             let N frames pass", check_integers, frames},
        {"sleep", 1, 1, "sleep SECONDS        let time pass", check_seconds, sleep_for},
        {"screenshot", 1, 1, "screenshot NAME      a step that only names its output files",
         nullptr, nothing},
        {"quit", 0, 0, "quit                 end the run here", nullptr, quit_run},
    };
    return verbs;
}

const ScriptVerb* find_script_verb(const std::string& name) {
    const auto& verbs = script_verbs();
    const auto it = std::find_if(verbs.begin(), verbs.end(),
                                 [&](const ScriptVerb& v) { return name == v.name; });
    return it == verbs.end() ? nullptr : &*it;
}

}  // namespace krause::ui
