// The Dynamics view's jobs: one per model on the data set's selected image (particles) and the
// images after it (measures), restarted when the model or the image changes.
#include "ui/dynamics_view.h"

#include "ui/actions.h"

#include <algorithm>
#include <cmath>

namespace krause::ui {

namespace {

constexpr const char* kColorNames[] = {"intensity", "row", "column", "order"};

const Dataset* selected_data(const StudioState& state) {
    const DataState& d = state.data;
    return d.data && d.data->size() > 0 ? d.data.get() : nullptr;
}

int64_t image_count(const StudioState& state, const Dataset& data) {
    const int64_t left = data.size() - state.data.selected;
    return std::max<int64_t>(1, std::min<int64_t>(state.dynamics.images, left));
}

// What a run's result belongs to: the model (path and handle), the first image and the count.
std::string wanted_key(const StudioState& state, const ModelSlot& slot) {
    const Dataset* data = selected_data(state);
    if (!slot.loaded() || !data) return "";
    return slot.summary.path + "#" +
           std::to_string(reinterpret_cast<uintptr_t>(slot.handle.get())) + "@" +
           std::to_string(state.data.selected) + "x" + std::to_string(image_count(state, *data));
}

bool start_run(StudioState& state, DynamicsRun& run, const ModelSlot& slot, std::string* error) {
    state.retired.retire(std::move(run.job));
    run.shown.reset();
    run.key = wanted_key(state, slot);
    const Dataset& data = *selected_data(state);
    const ModelSummary& m = slot.summary;
    if (m.image_height != data.height || m.image_width != data.width ||
        m.image_channels != data.channels) {
        *error = m.path + " takes other images than the data set holds";
        return false;
    }
    DynamicsRequest request;
    request.count = image_count(state, data);
    const uint8_t* first = data.image(state.data.selected);
    request.images.assign(first, first + request.count * data.seq_len());
    request.particles_of = 0;
    try {
        run.job = start_dynamics(slot.handle, std::move(request));
    } catch (const std::exception& e) {
        *error = e.what();
        return false;
    }
    return true;
}

// The middle 98% of the particle positions over all layers, padded, so that one far outlier
// (often the first token) does not shrink everything else to a dot.
ImVec4 particle_bounds(const Particles& p) {
    std::vector<float> xs, ys;
    for (int64_t l = 0; l < p.layers; ++l) {
        for (int64_t t = 0; t < p.tokens; ++t) {
            xs.push_back(p.x(l, t));
            ys.push_back(p.y(l, t));
        }
    }
    if (xs.empty()) return ImVec4(-1, -1, 1, 1);
    auto quantile = [](std::vector<float>& v, double q) {
        const size_t i = static_cast<size_t>(q * static_cast<double>(v.size() - 1));
        std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v.end());
        return v[i];
    };
    const float x0 = quantile(xs, 0.01), x1 = quantile(xs, 0.99);
    const float y0 = quantile(ys, 0.01), y1 = quantile(ys, 0.99);
    const float pad = 0.08f * std::max({x1 - x0, y1 - y0, 1e-6f});
    return ImVec4(x0 - pad, y0 - pad, x1 + pad, y1 + pad);
}

void update_run(DynamicsRun& run) {
    if (!run.job) return;
    auto latest = run.job->snapshot();
    if (latest == run.shown) return;
    const bool new_particles =
        latest->particles_ready && !(run.shown && run.shown->particles_ready);
    run.shown = latest;
    if (new_particles) run.bounds = particle_bounds(latest->particles);
}

bool run_pending(const DynamicsRun& run, const std::string& wanted, std::string* failure) {
    if (wanted.empty()) return false;
    if (run.key != wanted) return true;
    if (!run.job) return false;  // refused at start; the message says why
    if (!run.job->done()) return true;
    if (run.job->state() == JobState::Failed) *failure = run.job->error();
    return false;
}

}  // namespace

const char* to_string(ParticleColor color) {
    return kColorNames[static_cast<int>(color)];
}

bool parse_particle_color(const std::string& name, ParticleColor* color) {
    for (size_t i = 0; i < std::size(kColorNames); ++i) {
        if (name == kColorNames[i]) {
            *color = static_cast<ParticleColor>(i);
            return true;
        }
    }
    return false;
}

bool start_dynamics_runs(StudioState& state, std::string* error) {
    if (!state.model.loaded()) {
        *error = "open a model first";
        return false;
    }
    if (!selected_data(state)) {
        *error = "load the data set first";
        return false;
    }
    DynamicsState& dy = state.dynamics;
    dy.message.clear();
    bool ok = start_run(state, dy.main, state.model, error);
    if (state.compare.model.loaded()) {
        std::string second_error;
        if (!start_run(state, dy.second, state.compare.model, &second_error)) {
            dy.message = "Compare model: " + second_error;
        }
    } else {
        state.retired.retire(std::move(dy.second.job));
        dy.second = DynamicsRun();
    }
    if (!ok) dy.message = *error;
    return ok;
}

bool dynamics_pending(const StudioState& state, std::string* failure) {
    if (state.data.loading) return true;
    if (!state.data.error.empty()) {
        *failure = "cannot load the data set: " + state.data.error;
        return false;
    }
    if (!selected_data(state) || !state.model.loaded()) return true;
    const DynamicsState& dy = state.dynamics;
    std::string main_failure, second_failure;
    const bool pending =
        run_pending(dy.main, wanted_key(state, state.model), &main_failure) ||
        run_pending(dy.second, wanted_key(state, state.compare.model), &second_failure);
    if (!main_failure.empty())
        *failure = main_failure;
    else if (!second_failure.empty())
        *failure = "Compare model: " + second_failure;
    return pending && failure->empty();
}

void update_dynamics(StudioState& state) {
    DynamicsState& dy = state.dynamics;
    update_run(dy.main);
    update_run(dy.second);
    if (!dy.auto_run || !state.model.loaded()) return;
    if (!state.data.data && !state.data.loading && state.data.error.empty()) load_data(state);
    if (!selected_data(state)) return;
    std::string error;
    if (dy.main.key != wanted_key(state, state.model)) {
        dy.message.clear();
        if (!start_run(state, dy.main, state.model, &error)) dy.message = error;
    }
    if (dy.second.key != wanted_key(state, state.compare.model)) {
        if (!state.compare.model.loaded()) {
            state.retired.retire(std::move(dy.second.job));
            dy.second = DynamicsRun();
        } else if (!start_run(state, dy.second, state.compare.model, &error)) {
            dy.message = "Compare model: " + error;
        }
    }
}

}  // namespace krause::ui
