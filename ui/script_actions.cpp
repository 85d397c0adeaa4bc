// What each script verb does to the studio, and what it then waits for. Verbs go through the same
// functions as the panels' buttons, so a script exercises the paths a user takes.
#include "ui/actions.h"
#include "ui/script.h"
#include "ui/settings.h"

#include <cstdlib>
#include <memory>

namespace krause::ui {

namespace {

template <class Snapshot>
bool running(const std::unique_ptr<Job<Snapshot>>& job) {
    return job && !job->done();
}

double seconds_arg(const std::vector<std::string>& w, size_t i, double fallback) {
    return w.size() > i ? std::strtod(w[i].c_str(), nullptr) : fallback;
}

int int_arg(const std::vector<std::string>& w, size_t i) {
    return static_cast<int>(std::strtol(w[i].c_str(), nullptr, 10));
}

}  // namespace

void ScriptRunner::start_step(StudioState& state) {
    const std::vector<std::string>& w = steps_[index_].words;
    const std::string& verb = w[0];
    waiter_ = nullptr;
    deadline_ = Clock::now() +
                std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(300.0));
    auto set_timeout = [&](double seconds) {
        deadline_ = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>(seconds));
    };
    std::string error;
    bool ok = true;

    auto wait_open = [](bool second) -> Waiter {
        return [second](StudioState& s, std::string* message) {
            const ModelSlot& m = second ? s.compare.model : s.model;
            if (m.opening) return Wait::Pending;
            if (!m.error.empty()) {
                *message = "cannot open the model: " + m.error;
                return Wait::Failed;
            }
            return Wait::Ready;
        };
    };

    if (verb == "open") {
        open_model(state, state.model, w[1]);
        waiter_ = wait_open(false);
        set_timeout(120);
    } else if (verb == "open-compare") {
        open_model(state, state.compare.model, w[1]);
        waiter_ = wait_open(true);
        set_timeout(120);
    } else if (verb == "tab") {
        Tab tab;
        parse_tab(w[1], &tab);
        select_tab(state, tab);
    } else if (verb == "set") {
        ok = apply_setting(state, w[1], w[2], &error);
    } else if (verb == "sample") {
        ok = start_sample(state, &error);
    } else if (verb == "sample-stop") {
        if (state.sample.job) state.sample.job->request_stop();
        waiter_ = [](StudioState& s, std::string*) {
            return running(s.sample.job) ? Wait::Pending : Wait::Ready;
        };
    } else if (verb == "save-png") {
        ok = save_sample_png(state, w[1], &error);
    } else if (verb == "load-data") {
        load_data(state);
        waiter_ = [](StudioState& s, std::string* message) {
            if (s.data.loading) return Wait::Pending;
            if (!s.data.error.empty()) {
                *message = "cannot load the data set: " + s.data.error;
                return Wait::Failed;
            }
            return Wait::Ready;
        };
    } else if (verb == "complete") {
        ok = start_complete(state, &error);
    } else if (verb == "click") {
        const int channel = w.size() > 5 ? int_arg(w, 5) : state.inspect.channel;
        ok = inspect_pixel(state, w[1], int_arg(w, 2), int_arg(w, 3), int_arg(w, 4), channel,
                           &error);
    } else if (verb == "inspect-layer") {
        state.inspect.layer = int_arg(w, 1);
        state.inspect.head = int_arg(w, 2);
        state.compare.layer = state.inspect.layer;
        if (state.inspect.maps.ready() &&
            (state.inspect.layer < 0 || state.inspect.layer >= state.inspect.maps.layers() ||
             state.inspect.head < 0 || state.inspect.head >= state.inspect.maps.heads())) {
            ok = false;
            error = "no map for layer " + w[1] + ", head " + w[2];
        }
    } else if (verb == "compare-sample") {
        ok = start_compare_samples(state, &error);
    } else if (verb == "train-start") {
        ok = start_train(state, &error);
    } else if (verb == "train-pause" || verb == "train-resume") {
        if (!running(state.train.job)) {
            ok = false;
            error = "no training is running";
        } else {
            state.train.job->set_paused(verb == "train-pause");
        }
    } else if (verb == "train-stop") {
        if (state.train.job) state.train.job->request_stop();
        waiter_ = [](StudioState& s, std::string*) {
            return running(s.train.job) ? Wait::Pending : Wait::Ready;
        };
        set_timeout(300);
    } else if (verb == "wait") {
        const std::string job = w[1];
        set_timeout(seconds_arg(w, 2, 300.0));
        waiter_ = [job](StudioState& s, std::string* message) {
            bool busy = false, exists = true;
            if (job == "open") {
                busy = s.model.opening != nullptr;
            } else if (job == "open-compare") {
                busy = s.compare.model.opening != nullptr;
            } else if (job == "data") {
                busy = s.data.loading != nullptr;
            } else if (job == "sample") {
                exists = s.sample.job != nullptr;
                busy = running(s.sample.job);
            } else if (job == "complete") {
                exists = s.complete.job != nullptr;
                busy = running(s.complete.job);
            } else if (job == "inspect") {
                exists = s.inspect.job != nullptr;
                busy = running(s.inspect.job) || running(s.compare.inspect) ||
                       running(s.inspect.measures) || running(s.compare.measures);
            } else if (job == "maps") {
                exists = s.inspect.job != nullptr;
                busy = running(s.inspect.job) || running(s.compare.inspect);
            } else if (job == "compare") {
                exists = s.compare.inspect != nullptr;
                busy = running(s.compare.inspect) || running(s.compare.measures);
            } else if (job == "compare-sample") {
                exists = s.compare.sample_a != nullptr;
                busy = running(s.compare.sample_a) || running(s.compare.sample_b);
            } else if (job == "train") {
                exists = s.train.job != nullptr;
                busy = running(s.train.job);
            } else if (job == "dynamics") {
                std::string failure;
                busy = dynamics_pending(s, &failure);
                if (!failure.empty()) {
                    *message = "dynamics: " + failure;
                    return Wait::Failed;
                }
            }
            if (!exists) {
                *message = "no " + job + " job was started";
                return Wait::Failed;
            }
            if (busy) *message = job + " still running";
            return busy ? Wait::Pending : Wait::Ready;
        };
    } else if (verb == "wait-steps" || verb == "wait-evals") {
        const long long target = std::strtoll(w[1].c_str(), nullptr, 10);
        const bool evals = verb == "wait-evals";
        set_timeout(seconds_arg(w, 2, 600.0));
        waiter_ = [target, evals](StudioState& s, std::string* message) {
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
        };
    } else if (verb == "frames") {
        auto left = std::make_shared<int>(int_arg(w, 1));
        waiter_ = [left](StudioState&, std::string*) {
            return --*left <= 0 ? Wait::Ready : Wait::Pending;
        };
    } else if (verb == "sleep") {
        const auto until = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                              std::chrono::duration<double>(seconds_arg(w, 1, 0)));
        set_timeout(seconds_arg(w, 1, 0) + 60);
        waiter_ = [until](StudioState&, std::string*) {
            return Clock::now() >= until ? Wait::Ready : Wait::Pending;
        };
    } else if (verb == "quit") {
        quit_ = true;
    }

    if (!ok) {
        fail(error);
        return;
    }
    phase_ = Phase::Waiting;
}

}  // namespace krause::ui
