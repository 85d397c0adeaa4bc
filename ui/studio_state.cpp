// Small helpers over StudioState: tab names, retiring jobs, asking what runs.
#include "ui/studio_state.h"

#include <algorithm>
#include <iterator>

namespace krause::ui {

namespace {
constexpr const char* kTabNames[] = {"model",   "sample", "complete", "inspect",
                                     "compare", "train",  "dynamics"};
}

const char* to_string(Tab tab) {
    return kTabNames[static_cast<int>(tab)];
}

bool parse_tab(const std::string& name, Tab* tab) {
    for (size_t i = 0; i < std::size(kTabNames); ++i) {
        if (name == kTabNames[i]) {
            *tab = static_cast<Tab>(i);
            return true;
        }
    }
    return false;
}

void JobRetirer::reap() {
    entries_.erase(
        std::remove_if(entries_.begin(), entries_.end(), [](const Entry& e) { return e.done(); }),
        entries_.end());
}

void select_tab(StudioState& state, Tab tab) {
    state.tab = tab;
    state.tab_request_frames = 2;
}

bool training_running(const StudioState& state) {
    return running(state.train.job);
}

const char* dynamics_waiting_text(const StudioState& state) {
    return !state.data.error.empty() ? "no test images (see above)"
           : state.data.loading      ? "loading the test images ..."
                                     : "computing ...";
}

bool any_job_running(const StudioState& state) {
    bool any = state.retired.size() > 0;
    for_each_job(state, [&](const auto& job) { any = any || running(job); });
    return any;
}

}  // namespace krause::ui
