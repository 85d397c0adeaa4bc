// Builds the JSON dumps. Field names follow the panels; every job is reported with its state and
// error so a checker can tell "did not run" from "ran and failed".
#include "ui/state_dump.h"
#include "ui/data_folder.h"

#include "ui/actions.h"

#include <imgui.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <unistd.h>

namespace krause::ui {

namespace {

using nlohmann::json;

template <class Snapshot>
json job_json(const std::unique_ptr<Job<Snapshot>>& job) {
    json j;
    j["state"] = job_state(job);
    j["error"] = job ? job->error() : "";
    return j;
}

json progress_json(const Progress& p) {
    return {{"done", p.done},
            {"total", p.total},
            {"rate", p.rate},
            {"eta_s", p.eta_s},
            {"unit", p.unit}};
}

json run_json(const RunCurves& run) {
    return {{"name", run.name},
            {"path", run.path},
            {"loss_points", run.loss.size()},
            {"test_points", run.test_all.size()},
            {"final_test_bpd", run.test_all.empty() ? json() : json(run.test_all.back().value)},
            {"final_test_bpd_predicted",
             run.test_pred.empty() ? json() : json(run.test_pred.back().value)}};
}

json model_json(const ModelSlot& slot) {
    json j;
    j["loaded"] = slot.loaded();
    j["opening"] = slot.opening != nullptr;
    j["error"] = slot.error;
    if (slot.loaded()) {
        const ModelSummary& m = slot.summary;
        j["path"] = m.path;
        j["attention"] = m.attention;
        j["image"] = {m.image_height, m.image_width, m.image_channels};
        j["d_model"] = m.d_model;
        j["n_heads"] = m.n_heads;
        j["n_layers"] = m.n_layers;
        j["window"] = m.window;
        j["top_k"] = m.top_k;
        j["parameters"] = m.parameters;
        j["step"] = m.step;
        j["dataset"] = m.dataset;
        j["run"] = run_json(slot.run);
    }
    return j;
}

json measures_json(const std::vector<LayerMeasures>& measures) {
    json j = json::array();
    for (const auto& m : measures) {
        j.push_back({{"sink_mass", m.sink_mass},
                     {"oldest_key", m.oldest_key},
                     {"max_weight", m.max_weight},
                     {"entropy", m.entropy},
                     {"keys_for_90", m.keys_for_90}});
    }
    return j;
}

json samples_json(const std::unique_ptr<Job<SampleSnapshot>>& job,
                  const std::shared_ptr<const SampleSnapshot>& shown) {
    json j = job_json(job);
    if (shown) {
        j["count"] = shown->images.count;
        j["filled"] = shown->images.filled;
        j["seq_len"] = shown->images.seq_len();
        j["progress"] = progress_json(shown->progress);
        // Sampling time up to the newest snapshot (the fill time once the job finished).
        const Progress& p = shown->progress;
        j["seconds"] = p.rate > 0 ? static_cast<double>(p.done) / p.rate : 0.0;
    }
    return j;
}

json maps_json(const AttentionMaps& maps, const std::vector<LayerMeasures>& over_image,
               const std::unique_ptr<Job<InspectSnapshot>>& measures) {
    json j;
    j["ready"] = maps.ready();
    j["measures"] = job_state(measures);
    j["over_image"] = measures_json(over_image);
    if (!maps.ready()) return j;
    const ProbeResult* r = maps.result();
    j["layers"] = maps.layers();
    j["heads"] = maps.heads();
    j["window"] = r->window;
    j["position"] = r->queries.empty() ? -1 : r->queries.front().position;
    json info = json::array();
    for (int l = 0; l < maps.layers(); ++l) {
        json row = json::array();
        for (int h = 0; h < maps.heads(); ++h) {
            const MapInfo& m = maps.info(l, h);
            row.push_back({{"max_weight", m.max_weight},
                           {"sink", m.sink},
                           {"selected", m.selected},
                           {"spread", m.spread}});
        }
        info.push_back(row);
    }
    j["maps"] = info;
    j["at_queries"] = measures_json(r->at_queries);
    return j;
}

json folders_json(const StudioState& state) {
    const DataFolderState& f = state.folders;
    json j = job_json(f.fetch);
    j["root"] = f.root;
    j["remembered"] = remembered_data_dir();
    j["window_open"] = f.window_open;
    j["base_url"] = f.base_url;
    json kinds = json::object();
    for (const auto& [kind, lookup] : f.found) {
        kinds[kind] = {
            {"dir", lookup.dir}, {"found", !lookup.dir.empty()}, {"looked_in", lookup.looked_in}};
        if (lookup.dir.empty()) kinds[kind]["message"] = data_missing_message(state, kind);
    }
    j["kinds"] = kinds;
    j["fetch_kind"] = f.fetch_kind;
    if (f.fetch_shown) {
        j["fetch"] = {{"progress", progress_json(f.fetch_shown->progress)},
                      {"file", f.fetch_shown->file},
                      {"dir", f.fetch_shown->dir},
                      {"done", f.fetch_shown->done},
                      {"lines", f.fetch_shown->lines.size()}};
    }
    j["message"] = f.message;
    j["error"] = f.error;
    j["browser"] = {{"folder", f.browser.folder},
                    {"listed", f.browser.listed == f.browser.folder},
                    {"failed", !f.browser.error.empty()}};
    return j;
}

json train_json(const TrainState& t) {
    json j = job_json(t.job);
    j["paused"] = t.job && t.job->paused();
    j["message"] = t.message;
    j["long_run_warning"] = t.long_run_warning;
    // Every option under its stored name (training/options.h), and which ones the user set.
    j["config"] = json::parse(t.config.to_json());
    j["given"] = t.given;
    j["view"] = {{"smoothing", t.view.smoothing},
                 {"log_y", t.view.log_y},
                 {"test_dims", t.view.test_predicted ? "predicted" : "all"},
                 {"states", kStateMeasures[t.view.state_measure].key}};
    j["runs"] = json::array();
    for (const auto& run : t.runs) j["runs"].push_back(run_json(run));
    j["runs_message"] = t.runs_message;
    j["export"] = {{"message", t.chart_export.message},
                   {"png_done", t.chart_export.png && t.chart_export.png->done},
                   {"error", t.chart_export.png ? t.chart_export.png->error : ""}};
    if (t.shown) {
        const TrainSnapshot& s = *t.shown;
        j["step"] = s.step;
        j["loss_bpd"] = s.loss_bpd;
        j["tokens_per_s"] = s.tokens_per_s;
        j["progress"] = progress_json(s.progress);
        std::string label;
        j["bar"] = progress_json(train_progress(t, &label));
        j["bar"]["label"] = label;
        j["loss_shown"] = s.loss_curve.empty() ? json() : json(s.loss_bpd);
        j["loss_points"] = s.loss_curve.size();
        j["evaluations"] = s.test_curve.size();
        j["test_bpd"] = s.test_curve.empty() ? json() : json(s.test_curve.back().value);
        j["test_bpd_predicted"] =
            s.test_curve_pred.empty() ? json() : json(s.test_curve_pred.back().value);
        j["sink_evaluations"] = s.sink_mass.size();
        // The last evaluation's token-state measures, one value per state (0: the embedding).
        j["state_evaluations"] = s.state_cosine.size();
        for (const auto& m : kStateMeasures) {
            const auto& rows = s.*m.values;
            j["states"][m.key] = rows.empty() ? json() : json(rows.back());
        }
        j["preview_count"] = s.preview.count;
        j["checkpoint"] = s.checkpoint;
        j["status"] = s.status;
        j["schedule"] = s.schedule;
        j["data"] = s.data;
    }
    return j;
}

json dynamics_run_json(const DynamicsRun& run) {
    json j = job_json(run.job);
    j["particles_ready"] = run.shown && run.shown->particles_ready;
    j["ready"] = run.shown && run.shown->ready;
    if (!run.shown) return j;
    const DynamicsSnapshot& s = *run.shown;
    j["progress"] = progress_json(s.progress);
    if (s.particles_ready) {
        const Particles& p = s.particles;
        j["particles"] = {{"layers", p.layers}, {"tokens", p.tokens}, {"explained", p.explained},
                          {"bounds", {run.bounds.x, run.bounds.y, run.bounds.z, run.bounds.w}}};
    }
    if (s.ready) {
        j["images"] = s.measures.images;
        j["eps_fractions"] = s.measures.eps_fractions;
        json states = json::array();
        for (const StateMeasures& m : s.measures.states) {
            states.push_back({{"cosine", m.cosine},
                              {"consensus", m.consensus},
                              {"effective_rank", m.effective_rank},
                              {"median_distance", m.median_distance},
                              {"clusters", m.clusters}});
        }
        j["states"] = states;
        j["attention"] = measures_json(s.measures.attention);
    }
    return j;
}

json stats(std::vector<float> values) {
    if (values.empty()) return {{"frames", 0}};
    std::sort(values.begin(), values.end());
    auto at = [&](double q) {
        const size_t i =
            std::min(values.size() - 1, static_cast<size_t>(q * (values.size() - 1) + 0.5));
        return values[i];
    };
    return {{"frames", values.size()},
            {"p50_ms", at(0.50)},
            {"p95_ms", at(0.95)},
            {"max_ms", values.back()}};
}

// Resident memory of the process, for soak runs; 0 where /proc is missing.
long long resident_kib() {
    std::ifstream statm("/proc/self/statm");
    long long pages_total = 0, pages_resident = 0;
    if (!(statm >> pages_total >> pages_resident)) return 0;
    return pages_resident * (::sysconf(_SC_PAGESIZE) / 1024);
}

}  // namespace

json dump_state(const StudioState& state) {
    json j;
    j["tab"] = to_string(state.tab);
    j["notice"] = state.notice;
    j["model"] = model_json(state.model);
    j["bundled"] = json::array();
    const BundledModel* open_bundled = bundled_in(state, state.model);
    if (open_bundled != nullptr) j["model"]["bundled"] = open_bundled->name;
    for (const auto& m : state.bundled) {
        const bool open = &m == open_bundled;
        j["bundled"].push_back({{"name", m.name}, {"data", m.data}, {"attention", m.attention},
                                {"preset", m.preset}, {"parameters", m.parameters},
                                {"bpd", {m.bpd_all, m.bpd_predicted}},
                                {"grid_seconds", m.grid_seconds},
                                {"slow", m.grid_seconds > kSlowGridSeconds}, {"open", open}});
    }
    j["recent"] = state.recent;
    // Where typed keys go: a text field takes them (Space then types instead of starting a job).
    j["keyboard"] = {{"text_input", ImGui::GetIO().WantTextInput},
                     {"item_active", ImGui::IsAnyItemActive()},
                     {"active_field", state.active_field},
                     {"focus_checkpoint", state.focus_checkpoint}};
    j["view"] = {{"font_scale", state.view.font_scale},
                 {"content_scale", state.content_scale},
                 {"theme", state.view.light ? "light" : "dark"},
                 {"font_pixels", ImGui::GetFontSize()}};

    j["sample"] = samples_json(state.sample.job, state.sample.shown);
    j["sample"]["message"] = state.sample.message;

    j["folders"] = folders_json(state);

    const DataState& d = state.data;
    j["data"] = {{"kind", d.kind},
                 {"dir", d.dir},
                 {"loading", d.loading != nullptr},
                 {"size", d.data ? d.data->size() : 0},
                 {"selected", d.selected},
                 {"label", label_text(d, d.selected)},
                 {"class_names", d.class_names},
                 {"error", d.error}};

    j["complete"] = samples_json(state.complete.job, state.complete.shown);
    j["complete"]["rows"] = state.complete.rows;
    j["complete"]["prompt"] = state.complete.drawn ? "drawing" : "data";
    j["complete"]["canvas_painted"] = state.complete.canvas.painted_pixels();
    j["complete"]["message"] = state.complete.message;

    const InspectState& in = state.inspect;
    j["inspect"] = job_json(in.job);
    j["inspect"]["message"] = in.message;
    j["inspect"]["has_target"] = in.has_target;
    if (in.has_target) {
        j["inspect"]["target"] = {
            {"source", in.target.source},   {"image", in.target.image},
            {"row", in.target.row},         {"col", in.target.col},
            {"channel", in.target.channel}, {"sub_pixel", in.target.sub_pixel}};
    }
    j["inspect"]["selected_map"] = {in.layer, in.head};
    j["inspect"]["colour_scale"] = to_string(in.style.scale);
    if (in.maps.ready()) {
        j["inspect"]["colour_max"] = in.maps.colour_max(in.layer, in.head);
    }
    if (in.has_target && in.next_probs.size() == 256) {
        const int truth = in.target.pixels.tokens[static_cast<size_t>(in.target.sub_pixel)];
        const auto top = std::max_element(in.next_probs.begin(), in.next_probs.end());
        double sum = 0;
        for (float p : in.next_probs) sum += p;
        j["inspect"]["next"] = {{"true_value", truth},
                                {"p_true", in.next_probs[truth]},
                                {"most_likely", top - in.next_probs.begin()},
                                {"p_most_likely", *top},
                                {"sum", sum}};
    }
    j["inspect"]["maps"] = maps_json(in.maps, in.over_image, in.measures);

    const CompareState& c = state.compare;
    j["compare"] = {{"model", model_json(c.model)},
                    {"inspect", job_json(c.inspect)},
                    {"maps", maps_json(c.maps, c.over_image, c.measures)},
                    {"message", c.message},
                    {"layer", c.layer}};
    j["compare"]["sample_a"] = samples_json(c.sample_a, c.shown_a);
    j["compare"]["sample_b"] = samples_json(c.sample_b, c.shown_b);
    j["compare"]["twins"] = json::array();
    for (const BundledModel* m : bundled_twins(state)) j["compare"]["twins"].push_back(m->name);
    if (const BundledModel* second = bundled_in(state, c.model)) {
        j["compare"]["model"]["bundled"] = second->name;
    }

    j["train"] = train_json(state.train);
    j["last_export"] = {{"path", state.last_export.path},
                        {"width", state.last_export.width},
                        {"height", state.last_export.height}};

    const DynamicsState& dy = state.dynamics;
    j["dynamics"] = {{"images", dy.images},        {"layer", dy.layer},
                     {"playing", dy.playing},      {"color", to_string(dy.color)},
                     {"clusters", dy.cluster_fraction}, {"selected", dy.selected},
                     {"fit_layer", dy.fit_layer},  {"message", dy.message},
                     {"waiting", dynamics_waiting_text(state)},
                     {"main", dynamics_run_json(dy.main)},
                     {"second", dynamics_run_json(dy.second)}};

    json regions = json::object();
    for (const auto& [name, r] : state.regions) {
        regions[name] = {std::lround(r.x), std::lround(r.y), std::lround(r.z), std::lround(r.w)};
    }
    j["regions"] = regions;
    j["frames"] = state.frames.frame_ms.size();
    j["rss_kib"] = resident_kib();
    j["jobs_stopping"] = state.retired.size();
    return j;
}

json frame_summary(const FrameTimes& frames) {
    std::vector<float> all, all_work, training, training_work;
    for (size_t i = 0; i < frames.frame_ms.size(); ++i) {
        if (frames.excluded[i]) continue;
        all.push_back(frames.frame_ms[i]);
        all_work.push_back(frames.work_ms[i]);
        if (frames.training[i]) {
            training.push_back(frames.frame_ms[i]);
            training_work.push_back(frames.work_ms[i]);
        }
    }
    json j = stats(all);
    j["work"] = stats(all_work);
    j["while_training"] = stats(training);
    j["while_training"]["work"] = stats(training_work);
    j["excluded_frames"] = frames.frame_ms.size() - all.size();
    j["note"] =
        "frames are drawn when something changed, at most 60 a second (30 while jobs run); "
        "frame: start of a frame to the start of the next when that one was due at once; "
        "work: building and rendering the frame";
    return j;
}

}  // namespace krause::ui
