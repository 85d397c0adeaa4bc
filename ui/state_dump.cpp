// Builds the JSON dumps. Field names follow the panels; every job is reported with its state and
// error so a checker can tell "did not run" from "ran and failed".
#include "ui/state_dump.h"

#include <algorithm>
#include <cmath>

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

json train_json(const TrainState& t) {
    json j = job_json(t.job);
    j["paused"] = t.job && t.job->paused();
    j["message"] = t.message;
    j["config"] = {{"preset", t.config.preset}, {"attention", t.config.attention},
                   {"data", t.data_kind},       {"dir", t.data_dir},
                   {"steps", t.config.steps},   {"batch", t.config.batch_size},
                   {"out", t.config.out_dir},   {"precision", t.config.precision},
                   {"dropout", t.config.dropout}, {"embed_dropout", t.config.embed_dropout},
                   {"mlp_dropout", t.config.mlp_dropout}};
    if (t.shown) {
        const TrainSnapshot& s = *t.shown;
        j["step"] = s.step;
        j["loss_bpd"] = s.loss_bpd;
        j["tokens_per_s"] = s.tokens_per_s;
        j["progress"] = progress_json(s.progress);
        j["loss_points"] = s.loss_curve.size();
        j["evaluations"] = s.test_curve.size();
        j["test_bpd"] = s.test_curve.empty() ? json() : json(s.test_curve.back().value);
        j["sink_evaluations"] = s.sink_mass.size();
        j["preview_count"] = s.preview.count;
        j["checkpoint"] = s.checkpoint;
        j["status"] = s.status;
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

}  // namespace

json dump_state(const StudioState& state) {
    json j;
    j["tab"] = to_string(state.tab);
    j["notice"] = state.notice;
    j["model"] = model_json(state.model);
    j["recent"] = state.recent;

    j["sample"] = samples_json(state.sample.job, state.sample.shown);
    j["sample"]["message"] = state.sample.message;

    const DataState& d = state.data;
    j["data"] = {{"kind", d.kind},
                 {"dir", d.dir},
                 {"loading", d.loading != nullptr},
                 {"size", d.data ? d.data->size() : 0},
                 {"selected", d.selected},
                 {"error", d.error}};

    j["complete"] = samples_json(state.complete.job, state.complete.shown);
    j["complete"]["rows"] = state.complete.rows;
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
    j["inspect"]["maps"] = maps_json(in.maps, in.over_image, in.measures);

    const CompareState& c = state.compare;
    j["compare"] = {{"model", model_json(c.model)},
                    {"inspect", job_json(c.inspect)},
                    {"maps", maps_json(c.maps, c.over_image, c.measures)},
                    {"message", c.message},
                    {"layer", c.layer}};
    j["compare"]["sample_a"] = samples_json(c.sample_a, c.shown_a);
    j["compare"]["sample_b"] = samples_json(c.sample_b, c.shown_b);

    j["train"] = train_json(state.train);

    const DynamicsState& dy = state.dynamics;
    j["dynamics"] = {{"images", dy.images},        {"layer", dy.layer},
                     {"playing", dy.playing},      {"color", to_string(dy.color)},
                     {"clusters", dy.cluster_fraction}, {"selected", dy.selected},
                     {"fit_layer", dy.fit_layer},
                     {"message", dy.message},      {"main", dynamics_run_json(dy.main)},
                     {"second", dynamics_run_json(dy.second)}};

    json regions = json::object();
    for (const auto& [name, r] : state.regions) {
        regions[name] = {std::lround(r.x), std::lround(r.y), std::lround(r.z), std::lround(r.w)};
    }
    j["regions"] = regions;
    j["frames"] = state.frames.frame_ms.size();
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
        "frame: start of a frame to the start of the next (the loop caps it near 60 fps); "
        "work: building and rendering the frame";
    return j;
}

}  // namespace krause::ui
