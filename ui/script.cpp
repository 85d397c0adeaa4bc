// The script language and its player. Every line is checked before the window opens, so a typo
// fails at once with its line number instead of after a long run.
#include "ui/script.h"

#include "ui/actions.h"
#include "ui/settings.h"
#include "ui/state_dump.h"
#include "ui/texture.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace krause::ui {

namespace {

struct Verb {
    const char* name;
    int min_args, max_args;
    const char* help;
};
constexpr Verb kVerbs[] = {
    {"open", 1, 1, "open PATH            open a checkpoint as the main model (waits for it)"},
    {"open-compare", 1, 1, "open-compare PATH    open the Compare panel's second model (waits)"},
    {"tab", 1, 1,
     "tab NAME             model | sample | complete | inspect | compare | train | dynamics"},
    {"set", 2, 2, "set KEY VALUE        a panel setting, e.g. sample.count 16 (list below)"},
    {"sample", 0, 0, "sample               start sampling with the sample.* settings"},
    {"sample-stop", 0, 0, "sample-stop          stop sampling (waits for the job to end)"},
    {"save-png", 1, 1, "save-png PATH        write the sample grid as a PNG"},
    {"load-data", 0, 0, "load-data            load the test set of data.kind / data.dir (waits)"},
    {"complete", 0, 0, "complete             complete image data.index from complete.rows rows"},
    {"click", 4, 5,
     "click SRC I ROW COL [CH]  inspect a pixel of image I of SRC: sample, complete, data,\n"
     "                     preview, compare-a, compare-b, inspect"},
    {"inspect-layer", 2, 2, "inspect-layer L H    enlarge the map of layer L, head H"},
    {"compare-sample", 0, 0, "compare-sample       sample both models of Compare with one seed"},
    {"train-start", 0, 0, "train-start          start training with the train.* settings"},
    {"train-pause", 0, 0, "train-pause          pause training"},
    {"train-resume", 0, 0, "train-resume         resume training"},
    {"train-stop", 0, 0, "train-stop           stop training (waits for the job to end)"},
    {"wait", 1, 2,
     "wait JOB [SECONDS]   until JOB is no longer running: open, open-compare, data, sample,\n"
     "                     complete, inspect (maps and image averages), maps (the maps only),\n"
     "                     compare, compare-sample, train, dynamics (the Dynamics view's\n"
     "                     jobs for the open image, started when the view is shown)"},
    {"wait-steps", 1, 2, "wait-steps N [S]     until training reached step N"},
    {"wait-evals", 1, 2, "wait-evals N [S]     until training made N evaluations"},
    {"frames", 1, 1, "frames N             let N frames pass"},
    {"sleep", 1, 1, "sleep SECONDS        let time pass"},
    {"screenshot", 1, 1, "screenshot NAME      a step that only names its output files"},
    {"quit", 0, 0, "quit                 end the run here"},
};
constexpr const char* kWaitJobs[] = {"open",           "open-compare", "data", "sample",
                                     "complete",       "inspect",      "maps", "compare",
                                     "compare-sample", "train",      "dynamics"};
constexpr const char* kSources[] = {"sample",    "complete",  "data",   "preview",
                                    "compare-a", "compare-b", "inspect"};
constexpr int kSettleFrames = 3;

template <size_t N>
bool one_of(const std::string& word, const char* const (&names)[N]) {
    return std::find_if(std::begin(names), std::end(names),
                        [&](const char* n) { return word == n; }) != std::end(names);
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
    const auto verb = std::find_if(std::begin(kVerbs), std::end(kVerbs),
                                   [&](const Verb& v) { return w[0] == v.name; });
    if (verb == std::end(kVerbs)) return "unknown verb '" + w[0] + "' (see --help)";
    const int args = static_cast<int>(w.size()) - 1;
    if (args < verb->min_args || args > verb->max_args) {
        return "wrong number of arguments; usage: " + std::string(verb->help);
    }
    const std::string& v = w[0];
    Tab tab;
    std::string error;
    if (v == "tab" && !parse_tab(w[1], &tab)) return "unknown tab '" + w[1] + "'";
    if (v == "set" && !check_setting(w[1], w[2], &error)) return error;
    if (v == "wait" && !one_of(w[1], kWaitJobs)) return "cannot wait for '" + w[1] + "'";
    if (v == "wait" && w.size() == 3 && !is_number(w[2], true)) return "timeout must be a number";
    if ((v == "wait-steps" || v == "wait-evals") &&
        (!is_number(w[1], false) || (w.size() == 3 && !is_number(w[2], true)))) {
        return "expects a step count and an optional timeout in seconds";
    }
    if (v == "click") {
        if (!one_of(w[1], kSources)) return "unknown image source '" + w[1] + "'";
        for (size_t i = 2; i < w.size(); ++i) {
            if (!is_number(w[i], false)) return "'" + w[i] + "' is not an integer";
        }
    }
    if ((v == "inspect-layer" || v == "frames") && !is_number(w[1], false)) {
        return "'" + w[1] + "' is not an integer";
    }
    if (v == "inspect-layer" && !is_number(w[2], false)) return "'" + w[2] + "' is not an integer";
    if (v == "sleep" && !is_number(w[1], true)) return "'" + w[1] + "' is not a number";
    return "";
}

std::string step_name(const std::vector<std::string>& w) {
    std::string name = w[0];
    if (w[0] == "screenshot") {
        name = w[1];
    } else if (w.size() > 1 &&
               (w[0] == "tab" || w[0] == "wait" || w[0] == "set" || w[0] == "click")) {
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
    for (const Verb& v : kVerbs) help += std::string("  ") + v.help + "\n";
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
    phase_ = Phase::Capture;
}

void ScriptRunner::before_frame(StudioState& state) {
    if (phase_ == Phase::Start) start_step(state);
    if (phase_ == Phase::Waiting) {
        std::string message;
        const Wait wait = waiter_ ? waiter_(state, &message) : Wait::Ready;
        if (wait == Wait::Failed) {
            fail(message);
        } else if (wait == Wait::Pending && Clock::now() > deadline_) {
            fail("timed out" + (message.empty() ? std::string() : ": " + message));
        } else if (wait == Wait::Ready) {
            phase_ = Phase::Settling;
            settle_left_ = kSettleFrames;
        }
    }
    if (phase_ == Phase::Settling && --settle_left_ <= 0) phase_ = Phase::Capture;
}

bool ScriptRunner::after_render(StudioState& state, int width, int height) {
    if (phase_ != Phase::Capture) return false;
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

    ++index_;
    phase_ = Phase::Start;
    if (!error_.empty() || quit_ || index_ >= steps_.size()) {
        phase_ = Phase::Done;
        std::ofstream(std::filesystem::path(out_dir_) / "frame_times.json")
            << frame_summary(state.frames).dump(2) << '\n';
    }
    return true;
}

}  // namespace krause::ui
