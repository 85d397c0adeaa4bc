// The script language and its player. Every line is checked before the window opens, so a typo
// fails at once with its line number instead of after a long run.
#include "ui/script.h"

#include "ui/settings.h"
#include "ui/state_dump.h"
#include "ui/texture.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace krause::ui {

namespace {

constexpr int kSettleFrames = 3;

std::string expand(const std::string& text, std::string* error) {
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
        if (text.compare(i, 2, "${") == 0) {
            const size_t close = text.find('}', i);
            if (close == std::string::npos) {
                *error = "unclosed ${";
                return "";
            }
            const std::string name = text.substr(i + 2, close - i - 2);
            const char* value = std::getenv(name.c_str());
            if (!value) {
                *error = "environment variable " + name + " is not set";
                return "";
            }
            out += value;
            i = close;
        } else {
            out += text[i];
        }
    }
    return out;
}

// Whitespace-separated words; "double quotes" keep spaces; # starts a comment.
std::vector<std::string> split(const std::string& line, std::string* error) {
    std::vector<std::string> words;
    size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
        if (i >= line.size() || line[i] == '#') break;
        std::string word;
        if (line[i] == '"') {
            const size_t close = line.find('"', i + 1);
            if (close == std::string::npos) {
                *error = "unclosed quote";
                return {};
            }
            word = line.substr(i + 1, close - i - 1);
            i = close + 1;
        } else {
            while (i < line.size() && !std::isspace(static_cast<unsigned char>(line[i]))) {
                word += line[i++];
            }
        }
        words.push_back(expand(word, error));
        if (!error->empty()) return {};
    }
    return words;
}

std::string check_step(const std::vector<std::string>& w) {
    const ScriptVerb* verb = find_script_verb(w[0]);
    if (!verb) return "unknown verb '" + w[0] + "' (see --help)";
    const int args = static_cast<int>(w.size()) - 1;
    if (args < verb->min_args || args > verb->max_args) {
        return "wrong number of arguments; usage: " + std::string(verb->help);
    }
    return verb->check ? verb->check(w) : "";
}

std::string step_name(const std::vector<std::string>& w) {
    std::string name = w[0];
    if (w[0] == "screenshot") {
        name = w[1];
    } else if (w.size() > 1 &&
               (w[0] == "tab" || w[0] == "wait" || w[0] == "set" || w[0] == "click" ||
                w[0] == "key")) {
        name += "-" + w[1];
    }
    for (char& c : name) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_')
            c = '_';
    }
    return name;
}

}  // namespace

std::vector<ScriptStep> load_script(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw ScriptError(path + ": cannot read the script");
    std::vector<ScriptStep> steps;
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
        std::string error;
        auto words = split(line, &error);
        if (error.empty() && !words.empty()) error = check_step(words);
        if (!error.empty()) {
            throw ScriptError(path + ":" + std::to_string(number) + ": " + error);
        }
        if (words.empty()) continue;
        steps.push_back(ScriptStep{number, words, step_name(words)});
    }
    if (steps.empty()) throw ScriptError(path + ": the script has no steps");
    return steps;
}

std::string script_help() {
    std::string help = "Script verbs (one per line, # comments, ${VAR} from the environment):\n";
    for (const ScriptVerb& v : script_verbs()) help += std::string("  ") + v.help + "\n";
    help += "Settings for `set`:\n ";
    size_t width = 1;
    for (const auto& name : setting_names()) {
        if (width + name.size() > 96) {
            help += "\n ";
            width = 1;
        }
        help += " " + name;
        width += name.size() + 1;
    }
    return help + "\n";
}

ScriptRunner::ScriptRunner(std::string path, std::vector<ScriptStep> steps, std::string out_dir)
    : path_(std::move(path)), steps_(std::move(steps)), out_dir_(std::move(out_dir)) {
    std::error_code ec;
    std::filesystem::create_directories(out_dir_, ec);
}

void ScriptRunner::fail(const std::string& message) {
    const int line = index_ < steps_.size() ? steps_[index_].line : 0;
    error_ = path_ + ":" + std::to_string(line) + ": " + message;
    std::fprintf(stderr, "krause-studio: %s\n", error_.c_str());
    // A few frames let the window show the message before the screenshot is taken.
    phase_ = Phase::Settling;
    settle_left_ = kSettleFrames + 1;
}

void ScriptRunner::before_frame(StudioState& state) {
    if (phase_ == Phase::Start) start_step(state);
    if (phase_ == Phase::Waiting) {
        std::string message;
        const ScriptWait wait = waiter_ ? waiter_(state, &message) : ScriptWait::Ready;
        if (wait == ScriptWait::Failed) {
            fail(message);
        } else if (wait == ScriptWait::Pending && Clock::now() > deadline_) {
            fail("timed out" + (message.empty() ? std::string() : ": " + message));
        } else if (wait == ScriptWait::Ready) {
            phase_ = Phase::Settling;
            settle_left_ = kSettleFrames;
        }
    }
    if (phase_ == Phase::Settling && --settle_left_ <= 0) phase_ = Phase::Capture;
    state.script_error = error_;
}

void ScriptRunner::start_step(StudioState& state) {
    const std::vector<std::string>& w = steps_[index_].words;
    const ScriptStart started = find_script_verb(w[0])->start(state, w);
    waiter_ = started.waiter;
    deadline_ = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(started.timeout_s));
    if (started.quit) quit_ = true;
    if (!started.error.empty()) {
        fail(started.error);
        return;
    }
    phase_ = Phase::Waiting;
}

bool ScriptRunner::after_render(StudioState& state, int width, int height) {
    if (phase_ != Phase::Capture) return false;
    const bool wanted = !named_only_ || !error_.empty() || index_ >= steps_.size() ||
                        steps_[index_].words[0] == "screenshot";
    if (wanted) write_step_files(state, width, height);
    ++index_;
    phase_ = Phase::Start;
    if (!error_.empty() || quit_ || index_ >= steps_.size()) {
        phase_ = Phase::Done;
        std::ofstream(std::filesystem::path(out_dir_) / "frame_times.json")
            << frame_summary(state.frames).dump(2) << '\n';
    }
    return wanted;
}

void ScriptRunner::write_step_files(StudioState& state, int width, int height) {
    char prefix[16];
    std::snprintf(prefix, sizeof prefix, "%02zu-", index_ + 1);
    const std::string name = prefix + (index_ < steps_.size() ? steps_[index_].name : "end") +
                             (error_.empty() ? "" : "-failed");
    const auto base = std::filesystem::path(out_dir_) / name;
    if (!write_framebuffer_png(base.string() + ".png", width, height)) {
        std::fprintf(stderr, "krause-studio: cannot write %s.png\n", base.string().c_str());
    }
    auto dump = dump_state(state);
    if (index_ < steps_.size()) {
        dump["script"] = {{"step", index_ + 1},
                          {"line", steps_[index_].line},
                          {"words", steps_[index_].words},
                          {"error", error_}};
    }
    dump["framebuffer"] = {width, height};
    std::ofstream(base.string() + ".json") << dump.dump(2) << '\n';
}

}  // namespace krause::ui
