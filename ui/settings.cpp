// The settings table: each name maps to a parser and a field of StudioState, with its range.
#include "ui/settings.h"

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

const std::vector<std::string> kKinds = {"mnist", "fashion-mnist", "cifar10"};
const std::vector<std::string> kPresets = {"mnist", "cifar10", "mnist-small", "mnist-tiny",
                                           "cifar10-small"};
constexpr long long kBig = 1000000000LL;

// Getters for a field of one part of the state, so that the table below reads as a list.
template <class Part, class T>
auto field(Part StudioState::*part, T Part::*member) {
    return [part, member](StudioState& s) -> T& { return (s.*part).*member; };
}
template <class T>
auto train_field(T TrainConfig::*member) {
    return [member](StudioState& s) -> T& { return s.train.config.*member; };
}
template <class T>
auto style_field(T MapStyle::*member) {
    return [member](StudioState& s) -> T& { return s.inspect.style.*member; };
}

const std::map<std::string, Setter>& table() {
    static const std::map<std::string, Setter> settings = {
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
             if (!text(field(&StudioState::data, &DataState::kind), kKinds)(s, v, e)) return false;
             s.data.dir = default_data_dir(v);
             return true;
         }},
        {"data.dir", text(field(&StudioState::data, &DataState::dir))},
        {"data.index", integer(field(&StudioState::data, &DataState::selected), 0, kBig)},
        {"complete.rows", integer(field(&StudioState::complete, &CompleteState::rows), 1, 1024)},
        {"complete.count", integer(field(&StudioState::complete, &CompleteState::count), 1, 16)},
        {"complete.temperature",
         real(field(&StudioState::complete, &CompleteState::temperature), 0.01, 10)},
        {"complete.seed", integer(field(&StudioState::complete, &CompleteState::seed), 0, kBig)},
        {"inspect.channel", integer(field(&StudioState::inspect, &InspectState::channel), 0, 2)},
        {"inspect.gamma", real(style_field(&MapStyle::gamma), 0.05, 1)},
        {"inspect.window", flag(style_field(&MapStyle::show_window))},
        {"inspect.kept", flag(style_field(&MapStyle::show_selected))},
        {"inspect.image", flag(style_field(&MapStyle::show_image))},
        {"inspect.averages", flag(field(&StudioState::inspect, &InspectState::averages_always))},
        {"inspect.jump", flag(field(&StudioState::inspect, &InspectState::jump_on_click))},
        {"compare.count", integer(field(&StudioState::compare, &CompareState::count), 1, 32)},
        {"compare.seed", integer(field(&StudioState::compare, &CompareState::seed), 0, kBig)},
        {"compare.layer", integer(field(&StudioState::compare, &CompareState::layer), 0, 1024)},
        {"dynamics.images", integer(field(&StudioState::dynamics, &DynamicsState::images), 1, 1024)},
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
        {"train.data",
         [](StudioState& s, const std::string& v, std::string* e) {
             if (!text(field(&StudioState::train, &TrainState::data_kind), kKinds)(s, v, e)) {
                 return false;
             }
             s.train.data_dir = default_data_dir(v);
             return true;
         }},
        {"train.dir", text(field(&StudioState::train, &TrainState::data_dir))},
        {"train.preset", text(train_field(&TrainConfig::preset), kPresets)},
        {"train.attention",
         text(train_field(&TrainConfig::attention), {"krause", "softmax", "linear"})},
        {"train.batch", integer(train_field(&TrainConfig::batch_size), 1, 65536)},
        {"train.steps", integer(train_field(&TrainConfig::steps), 1, kBig)},
        {"train.epochs", real(train_field(&TrainConfig::epochs), 0, 1e6)},
        {"train.lr", real(train_field(&TrainConfig::lr), 0, 10)},
        {"train.weight_decay", real(train_field(&TrainConfig::weight_decay), 0, 10)},
        {"train.warmup", real(train_field(&TrainConfig::warmup), 0, 1)},
        {"train.min_lr", real(train_field(&TrainConfig::min_lr), 0, 10)},
        {"train.dropout", real(train_field(&TrainConfig::dropout), 0, 1)},
        {"train.embed_dropout", real(train_field(&TrainConfig::embed_dropout), 0, 1)},
        {"train.mlp_dropout", real(train_field(&TrainConfig::mlp_dropout), 0, 1)},
        {"train.embed_init_std", real(train_field(&TrainConfig::embed_init_std), 0, 1e6)},
        {"train.grad_clip", real(train_field(&TrainConfig::grad_clip), 0, 1e6)},
        {"train.train_limit", integer(train_field(&TrainConfig::train_limit), 0, kBig)},
        {"train.eval_every", integer(train_field(&TrainConfig::eval_every), 0, kBig)},
        {"train.eval_limit", integer(train_field(&TrainConfig::eval_limit), 0, kBig)},
        {"train.checkpoint_every", integer(train_field(&TrainConfig::checkpoint_every), 0, kBig)},
        {"train.log_every", integer(train_field(&TrainConfig::log_every), 1, kBig)},
        {"train.preview", integer(train_field(&TrainConfig::preview_count), 0, 64)},
        {"train.seed", integer(train_field(&TrainConfig::seed), 0, kBig)},
        {"train.device", text(train_field(&TrainConfig::device), {"auto", "cpu", "cuda"})},
        {"train.precision", text(train_field(&TrainConfig::precision), {"bf16", "fp32"})},
        {"train.threads", integer(train_field(&TrainConfig::threads), 0, 1024)},
        {"train.out", text(train_field(&TrainConfig::out_dir))},
        {"train.resume", text(train_field(&TrainConfig::resume))},
        {"train.inject_nan_at", integer(train_field(&TrainConfig::inject_nan_at), -1, kBig)},
    };
    return settings;
}

}  // namespace

bool apply_setting(StudioState& state, const std::string& key, const std::string& value,
                   std::string* error) {
    const auto it = table().find(key);
    if (it == table().end()) {
        *error = "unknown setting '" + key + "'";
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
