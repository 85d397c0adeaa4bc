// The settings table: each name maps to a parser and a field of StudioState, with its range; the
// train.* settings are the options of training/options.h.
#include "ui/settings.h"
#include "ui/data_folder.h"

#include "training/options.h"
#include "ui/actions.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <functional>
#include <map>
#include <type_traits>

namespace krause::ui {

namespace {

using Setter = std::function<bool(StudioState&, const std::string&, std::string*)>;

bool parse_integer(const std::string& text, long long* out) {
    if (text.empty()) return false;
    char* end = nullptr;
    errno = 0;
    *out = std::strtoll(text.c_str(), &end, 10);
    return errno == 0 && end && *end == '\0';
}

bool parse_real(const std::string& text, double* out) {
    if (text.empty()) return false;
    char* end = nullptr;
    errno = 0;
    *out = std::strtod(text.c_str(), &end);
    return errno == 0 && end && *end == '\0';
}

template <class Get>
Setter integer(Get get, long long lo, long long hi) {
    return [get, lo, hi](StudioState& s, const std::string& text, std::string* error) {
        long long v = 0;
        if (!parse_integer(text, &v) || v < lo || v > hi) {
            *error = "expects an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                     "], got '" + text + "'";
            return false;
        }
        auto& field = get(s);
        field = static_cast<std::decay_t<decltype(field)>>(v);
        return true;
    };
}

template <class Get>
Setter real(Get get, double lo, double hi) {
    return [get, lo, hi](StudioState& s, const std::string& text, std::string* error) {
        double v = 0;
        if (!parse_real(text, &v) || !(v >= lo && v <= hi)) {
            *error = "expects a number in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                     "], got '" + text + "'";
            return false;
        }
        auto& field = get(s);
        field = static_cast<std::decay_t<decltype(field)>>(v);
        return true;
    };
}

template <class Get>
Setter flag(Get get) {
    return [get](StudioState& s, const std::string& text, std::string* error) {
        if (text != "on" && text != "off" && text != "1" && text != "0") {
            *error = "expects on or off, got '" + text + "'";
            return false;
        }
        get(s) = text == "on" || text == "1";
        return true;
    };
}

template <class Get>
Setter text(Get get, std::vector<std::string> choices = {}) {
    return [get, choices](StudioState& s, const std::string& value, std::string* error) {
        if (!choices.empty() && std::find(choices.begin(), choices.end(), value) == choices.end()) {
            std::string list;
            for (const auto& c : choices) list += (list.empty() ? "" : ", ") + c;
            *error = "expects one of " + list + ", got '" + value + "'";
            return false;
        }
        get(s) = value;
        return true;
    };
}

constexpr long long kBig = 1000000000LL;

// Getters for a field of one part of the state, so that the table below reads as a list.
template <class Part, class T>
auto field(Part StudioState::*part, T Part::*member) {
    return [part, member](StudioState& s) -> T& { return (s.*part).*member; };
}
template <class Part, class Sub, class T>
auto field(Part StudioState::*part, Sub Part::*sub, T Sub::*member) {
    return [part, sub, member](StudioState& s) -> T& { return ((s.*part).*sub).*member; };
}
template <class T>
auto style_field(T MapStyle::*member) {
    return [member](StudioState& s) -> T& { return s.inspect.style.*member; };
}

// The settings of the panels other than Train's form.
std::map<std::string, Setter> panel_settings() {
    return {
        {"sample.count", integer(field(&StudioState::sample, &SampleState::count), 1, 64)},
        {"sample.temperature",
         real(field(&StudioState::sample, &SampleState::temperature), 0.01, 10)},
        {"sample.seed", integer(field(&StudioState::sample, &SampleState::seed), 0, kBig)},
        {"sample.speed",
         [](StudioState& s, const std::string& v, std::string* e) {
             // Sub-pixels per frame; 0 means as fast as possible.
             auto& speed = s.sample.tokens_per_frame;
             if (!integer(field(&StudioState::sample, &SampleState::tokens_per_frame), 0, 4096)(
                     s, v, e)) {
                 return false;
             }
             s.sample.fast = speed == 0;
             if (s.sample.fast) speed = 1;
             return true;
         }},
        {"sample.png", text(field(&StudioState::sample, &SampleState::png_path))},
        {"data.kind",
         [](StudioState& s, const std::string& v, std::string* e) {
             const auto kind = field(&StudioState::data, &DataState::kind);
             if (!text(kind, dataset_kind_choices())(s, v, e)) return false;
             s.data.dir = data_dir_for(s, v);
             return true;
         }},
        {"data.index", integer(field(&StudioState::data, &DataState::selected), 0, kBig)},
        {"complete.rows", integer(field(&StudioState::complete, &CompleteState::rows), 1, 1024)},
        {"complete.count", integer(field(&StudioState::complete, &CompleteState::count), 1, 16)},
        {"complete.temperature",
         real(field(&StudioState::complete, &CompleteState::temperature), 0.01, 10)},
        {"complete.seed", integer(field(&StudioState::complete, &CompleteState::seed), 0, kBig)},
        {"complete.prompt",
         [](StudioState& s, const std::string& v, std::string* e) {
             if (v != "data" && v != "drawing") {
                 *e = "expects data or drawing, got '" + v + "'";
                 return false;
             }
             s.complete.drawn = v == "drawing";
             return true;
         }},
        {"complete.brush",
         integer([](StudioState& s) -> int& { return s.complete.canvas.radius; }, 0, 6)},
        {"complete.eraser", flag([](StudioState& s) -> bool& { return s.complete.canvas.eraser; })},
        {"complete.grey",
         [](StudioState& s, const std::string& v, std::string* e) {
             float level = 0;
             if (!real([&level](StudioState&) -> float& { return level; }, 0, 1)(s, v, e)) {
                 return false;
             }
             float* c = s.complete.canvas.colour;
             c[0] = c[1] = c[2] = level;
             return true;
         }},
        {"inspect.channel", integer(field(&StudioState::inspect, &InspectState::channel), 0, 2)},
        {"inspect.gamma", real(style_field(&MapStyle::gamma), 0.05, 1)},
        {"inspect.scale",
         [](StudioState& s, const std::string& v, std::string* e) {
             for (MapScale scale : {MapScale::PerMap, MapScale::Shared, MapScale::Absolute}) {
                 if (v == to_string(scale)) {
                     s.inspect.style.scale = scale;
                     return true;
                 }
             }
             *e = "expects per-map, shared or absolute, got '" + v + "'";
             return false;
         }},
        {"inspect.window", flag(style_field(&MapStyle::show_window))},
        {"inspect.kept", flag(style_field(&MapStyle::show_selected))},
        {"inspect.image", flag(style_field(&MapStyle::show_image))},
        {"inspect.averages", flag(field(&StudioState::inspect, &InspectState::averages_always))},
        {"inspect.jump", flag(field(&StudioState::inspect, &InspectState::jump_on_click))},
        {"compare.count", integer(field(&StudioState::compare, &CompareState::count), 1, 32)},
        {"compare.seed", integer(field(&StudioState::compare, &CompareState::seed), 0, kBig)},
        {"compare.layer", integer(field(&StudioState::compare, &CompareState::layer), 0, 1024)},
        {"dynamics.images",
         integer(field(&StudioState::dynamics, &DynamicsState::images), 1, 1024)},
        {"dynamics.layer", real(field(&StudioState::dynamics, &DynamicsState::layer), 0, 1024)},
        {"dynamics.play", flag(field(&StudioState::dynamics, &DynamicsState::playing))},
        {"dynamics.fit", flag(field(&StudioState::dynamics, &DynamicsState::fit_layer))},
        {"dynamics.clusters",
         integer(field(&StudioState::dynamics, &DynamicsState::cluster_fraction), 0, 2)},
        {"dynamics.color",
         [](StudioState& s, const std::string& v, std::string* e) {
             if (parse_particle_color(v, &s.dynamics.color)) return true;
             *e = "expects intensity, row, column or order, got '" + v + "'";
             return false;
         }},
        // The Train chart's view; train.* are the training options of the table alone.
        {"chart.smoothing",
         real(field(&StudioState::train, &TrainState::view, &CurveView::smoothing), 0, 0.99)},
        {"chart.log_scale", flag(field(&StudioState::train, &TrainState::view, &CurveView::log_y))},
        {"chart.test_dims",
         [](StudioState& s, const std::string& v, std::string* e) {
             if (v != "all" && v != "predicted") {
                 *e = "expects all or predicted, got '" + v + "'";
                 return false;
             }
             s.train.view.test_predicted = v == "predicted";
             return true;
         }},
        {"chart.states",
         [](StudioState& s, const std::string& v, std::string* e) {
             for (size_t i = 0; i < kStateMeasures.size(); ++i) {
                 if (v == kStateMeasures[i].key) {
                     s.train.view.state_measure = static_cast<int>(i);
                     return true;
                 }
             }
             *e = "expects cosine, consensus, rank or clusters, got '" + v + "'";
             return false;
         }},
        {"view.scale",
         [](StudioState& s, const std::string& v, std::string* e) {
             // 0 follows the monitor's content scale.
             double scale = 0;
             if (!parse_real(v, &scale) ||
                 !(scale == 0 || (scale >= kMinFontScale && scale <= kMaxFontScale))) {
                 *e = "expects 0 (follow the monitor) or a factor in [0.5, 4], got '" + v + "'";
                 return false;
             }
             s.view.font_scale = static_cast<float>(scale);
             s.view_changed = true;
             return true;
         }},
        {"view.theme",
         [](StudioState& s, const std::string& v, std::string* e) {
             if (v != "dark" && v != "light") {
                 *e = "expects dark or light, got '" + v + "'";
                 return false;
             }
             s.view.light = v == "light";
             s.view_changed = true;
             return true;
         }},
    };
}

// A training option of training/options.h, parsed and checked by the table as the CLI does.
Setter train_option(const OptionSpec* option) {
    return [option](StudioState& s, const std::string& value, std::string* error) {
        try {
            set_option(*option, s.train.config, value);
        } catch (const std::invalid_argument& e) {
            *error = e.what();
            return false;
        }
        s.train.given.insert(option->name);
        return true;
    };
}

const std::map<std::string, Setter>& table() {
    static const std::map<std::string, Setter> settings = [] {
        auto all = panel_settings();
        for (const auto& o : train_options()) all.emplace(o.setting_key(), train_option(&o));
        return all;
    }();
    return settings;
}

// Parts of the state a script sees in the dump but cannot set, and what to do instead. The
// kind's folder follows the data folder, as in the Data window, so that the folder shown is the
// one loaded from.
const std::map<std::string, std::string>& derived_settings() {
    static const std::map<std::string, std::string> derived = {
        {"data.dir", "follows the data folder: choose that with data-folder PATH"},
    };
    return derived;
}

}  // namespace

bool apply_setting(StudioState& state, const std::string& key, const std::string& value,
                   std::string* error) {
    const auto it = table().find(key);
    if (it == table().end()) {
        const auto why = derived_settings().find(key);
        *error = why != derived_settings().end() ? key + " " + why->second
                                                 : "unknown setting '" + key + "'";
        return false;
    }
    if (!it->second(state, value, error)) {
        *error = key + " " + *error;
        return false;
    }
    return true;
}

bool check_setting(const std::string& key, const std::string& value, std::string* error) {
    StudioState scratch;
    return apply_setting(scratch, key, value, error);
}

std::vector<std::string> setting_names() {
    std::vector<std::string> names;
    for (const auto& entry : table()) names.push_back(entry.first);
    return names;
}

}  // namespace krause::ui
