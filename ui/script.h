// Scripted runs: a text file of actions, one a line, played into the live UI; after each step the
// window is saved as DIR/NN-name.png with the state as DIR/NN-name.json.
#pragma once

#include "ui/studio_state.h"

#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace krause::ui {

struct ScriptStep {
    int line = 0;
    std::vector<std::string> words;  // verb first, ${VAR} already expanded
    std::string name;                // for the output files
};

class ScriptError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Reads and checks the whole script (verbs, argument counts, setting names and values); throws
// ScriptError "FILE:LINE: what is wrong" on the first bad line.
std::vector<ScriptStep> load_script(const std::string& path);
// One line per verb, for --help.
std::string script_help();

// What a step waits for after it started: Pending until Ready, or Failed with a message.
enum class ScriptWait { Pending, Ready, Failed };
using ScriptWaiter = std::function<ScriptWait(StudioState&, std::string*)>;

// What starting a step did: an error, or what to wait for (nothing: ready at once) and how long.
struct ScriptStart {
    std::string error;
    ScriptWaiter waiter;
    double timeout_s = 300;
    bool quit = false;
};

// One verb: its argument counts and usage, a check of its words when the script is read (null:
// the counts are all), and what it does when its turn comes.
struct ScriptVerb {
    const char* name;
    int min_args, max_args;
    const char* help;
    std::string (*check)(const std::vector<std::string>& words);  // "" when fine
    ScriptStart (*start)(StudioState& state, const std::vector<std::string>& words);
};
// Every verb, in the order --help lists them (ui/script_actions.cpp).
const std::vector<ScriptVerb>& script_verbs();
const ScriptVerb* find_script_verb(const std::string& name);

class ScriptRunner {
public:
    ScriptRunner(std::string path, std::vector<ScriptStep> steps, std::string out_dir);

    // Before the UI is built each frame: runs the next action, or checks what it waits for.
    void before_frame(StudioState& state);
    // After rendering, before the swap: writes the step's screenshot and state when it is due.
    // Returns true when it wrote them (the frame's time is then not the UI's).
    bool after_render(StudioState& state, int width, int height);

    // Writes files only for `screenshot` steps and a failed step (long soak runs).
    void set_named_only(bool named_only) { named_only_ = named_only; }

    bool finished() const { return phase_ == Phase::Done; }
    // Waiting for a job: frames need only be drawn when something changes.
    bool waiting() const { return phase_ == Phase::Waiting; }
    int exit_code() const { return error_.empty() ? 0 : 1; }
    const std::string& error() const { return error_; }

private:
    using Clock = std::chrono::steady_clock;
    enum class Phase { Start, Waiting, Settling, Capture, Done };

    void start_step(StudioState& state);
    void write_step_files(StudioState& state, int width, int height);
    void fail(const std::string& message);

    std::string path_;
    std::vector<ScriptStep> steps_;
    std::string out_dir_;
    size_t index_ = 0;
    Phase phase_ = Phase::Start;
    ScriptWaiter waiter_;
    std::chrono::steady_clock::time_point deadline_;
    int settle_left_ = 0;
    bool quit_ = false;
    bool named_only_ = false;
    std::string error_;
};

}  // namespace krause::ui
