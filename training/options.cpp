// What is made from the option table (option_table.cpp): text parsing, per-option checks, names
// of choices, and the model a run builds. Validation and JSON (train_config.cpp) and the resume
// merge (resume_options.cpp) use them too.
#include "training/options.h"

#include "data/dataset.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <type_traits>

namespace krause {

namespace {

using C = TrainConfig;

// The model options that override a preset's value, and the ModelConfig field each sets.
struct ModelKnob {
    const char* name;
    std::variant<std::optional<int64_t> TrainConfig::*, std::optional<double> TrainConfig::*> given;
    std::variant<int64_t ModelConfig::*, double ModelConfig::*> model;
};
const ModelKnob kModelKnobs[] = {
    {"d_model", &C::d_model, &ModelConfig::d_model},
    {"n_heads", &C::n_heads, &ModelConfig::n_heads},
    {"n_layers", &C::n_layers, &ModelConfig::n_layers},
    {"window", &C::window, &ModelConfig::window},
    {"top_k", &C::top_k, &ModelConfig::top_k},
    {"init_sigma", &C::init_sigma, &ModelConfig::init_sigma},
};

const ModelKnob* find_knob(const std::string& name) {
    for (const auto& knob : kModelKnobs) {
        if (name == knob.name) return &knob;
    }
    return nullptr;
}

std::string format_real(double v) {
    char buf[40];
    for (int digits = 6; digits <= 17; ++digits) {
        std::snprintf(buf, sizeof buf, "%.*g", digits, v);
        if (std::strtod(buf, nullptr) == v) break;
    }
    return buf;
}

std::string list(const std::vector<std::string>& names) {
    return join_choices(names, ", ");
}

template <class Int>
Int parse_integer(const OptionSpec& o, const std::string& text) {
    const auto bad = [&] {
        return std::invalid_argument("--" + std::string(o.flag) + " expects an integer, got '" +
                                     text + "'");
    };
    if (text.empty() || std::isspace(static_cast<unsigned char>(text[0]))) throw bad();
    char* end = nullptr;
    errno = 0;
    if constexpr (std::is_unsigned_v<Int>) {
        if (text[0] == '-') throw bad();
        const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
        if (errno != 0 || *end != '\0' || v > std::numeric_limits<Int>::max()) throw bad();
        return static_cast<Int>(v);
    } else {
        const long long v = std::strtoll(text.c_str(), &end, 10);
        if (errno != 0 || *end != '\0' || v < std::numeric_limits<Int>::min() ||
            v > std::numeric_limits<Int>::max()) {
            throw bad();
        }
        return static_cast<Int>(v);
    }
}

double parse_real(const OptionSpec& o, const std::string& text) {
    char* end = nullptr;
    errno = 0;
    const double v = text.empty() ? 0 : std::strtod(text.c_str(), &end);
    if (text.empty() || errno != 0 || *end != '\0' ||
        std::isspace(static_cast<unsigned char>(text[0]))) {
        throw std::invalid_argument("--" + std::string(o.flag) + " expects a number, got '" + text +
                                    "'");
    }
    return v;
}

template <class T>
std::string number_text(T v) {
    if constexpr (std::is_floating_point_v<T>) {
        return format_real(v);
    } else {
        return std::to_string(v);
    }
}

bool in_range(const OptionSpec& o, double v) {
    if (!std::isfinite(v)) return false;
    if (o.lo_open ? !(v > o.lo) : !(v >= o.lo)) return false;
    if (o.hi_open ? !(v < o.hi) : !(v <= o.hi)) return false;
    return true;
}

std::string check_text(const OptionSpec& o, const std::string& value) {
    const std::string flag = "--" + std::string(o.flag);
    switch (o.text) {
        case TextKind::Free:
            // The run's folder must be named; an empty resume means a fresh run.
            if (value.empty() && std::string(o.name) == "out_dir")
                return flag + " must name a folder";
            return "";
        case TextKind::Choice:
            for (const auto& c : o.choices()) {
                if (value == c) return "";
            }
            return flag + " must be one of " + list(o.choices()) + ", got '" + value + "'";
        case TextKind::DataSpec: {
            const auto colon = value.find(':');
            try {
                parse_dataset_kind(value.substr(0, colon));
            } catch (const std::invalid_argument&) {
                return flag + " must be KIND[:DIR] with KIND one of " + list(o.choices()) +
                       ", got '" + value + "'";
            }
            if (colon != std::string::npos && colon + 1 == value.size()) {
                return flag + " '" + value + "' has no folder after ':'";
            }
            return "";
        }
    }
    return "";
}

}  // namespace

const std::vector<std::string>& preset_choices() {
    static const std::vector<std::string> names = preset_names();
    return names;
}

const std::vector<std::string>& attention_choices() {
    static const std::vector<std::string> names = attention_names();
    return names;
}

const std::vector<std::string>& dataset_kind_choices() {
    static const std::vector<std::string> names = {to_string(DatasetKind::Mnist),
                                                   to_string(DatasetKind::FashionMnist),
                                                   to_string(DatasetKind::Cifar10)};
    return names;
}

const std::vector<std::string>& device_choices() {
    static const std::vector<std::string> names = {"auto", "cpu", "cuda"};
    return names;
}

const std::vector<std::string>& precision_choices() {
    static const std::vector<std::string> names = {"bf16", "fp32"};
    return names;
}

std::string join_choices(const std::vector<std::string>& names, const char* separator) {
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "" : separator) + n;
    return out;
}

const char* to_string(OptionGroup group) {
    switch (group) {
        case OptionGroup::Model:
            return "model";
        case OptionGroup::Data:
            return "data";
        case OptionGroup::Optimiser:
            return "optimiser";
        case OptionGroup::Schedule:
            return "schedule";
        case OptionGroup::Run:
            return "run";
        case OptionGroup::Testing:
            return "testing";
    }
    return "";
}

bool OptionSpec::is_optional() const {
    return std::holds_alternative<std::optional<int64_t> TrainConfig::*>(field) ||
           std::holds_alternative<std::optional<double> TrainConfig::*>(field);
}

bool OptionSpec::is_integer() const {
    return std::holds_alternative<int64_t TrainConfig::*>(field) ||
           std::holds_alternative<int TrainConfig::*>(field) ||
           std::holds_alternative<uint64_t TrainConfig::*>(field) ||
           std::holds_alternative<std::optional<int64_t> TrainConfig::*>(field);
}

bool OptionSpec::is_real() const {
    return std::holds_alternative<double TrainConfig::*>(field) ||
           std::holds_alternative<std::optional<double> TrainConfig::*>(field);
}

std::string OptionSpec::setting_key() const {
    std::string key = std::string("train.") + flag;
    for (char& c : key) {
        if (c == '-') c = '_';
    }
    return key;
}

const OptionSpec* find_option(const std::string& name_or_flag) {
    for (const auto& o : train_options()) {
        if (name_or_flag == o.name || name_or_flag == o.flag) return &o;
    }
    return nullptr;
}

std::string option_text(const OptionSpec& o, const TrainConfig& config) {
    return std::visit(
        [&](auto member) -> std::string {
            const auto& v = config.*member;
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, std::string>) {
                return v;
            } else if constexpr (std::is_same_v<T, std::optional<int64_t>> ||
                                 std::is_same_v<T, std::optional<double>>) {
                return v ? number_text(*v) : std::string();
            } else {
                return number_text(v);
            }
        },
        o.field);
}

void set_option(const OptionSpec& o, TrainConfig& config, const std::string& text) {
    TrainConfig changed = config;
    std::visit(
        [&](auto member) {
            auto& v = changed.*member;
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, std::string>) {
                v = text;
            } else if constexpr (std::is_same_v<T, std::optional<int64_t>>) {
                v = text.empty() ? std::nullopt
                                 : std::optional<int64_t>(parse_integer<int64_t>(o, text));
            } else if constexpr (std::is_same_v<T, std::optional<double>>) {
                v = text.empty() ? std::nullopt : std::optional<double>(parse_real(o, text));
            } else if constexpr (std::is_floating_point_v<T>) {
                v = parse_real(o, text);
            } else {
                v = parse_integer<T>(o, text);
            }
        },
        o.field);
    const std::string error = check_option(o, changed);
    if (!error.empty()) throw std::invalid_argument(error);
    config = changed;
}

std::string check_option(const OptionSpec& o, const TrainConfig& config) {
    return std::visit(
        [&](auto member) -> std::string {
            const auto& v = config.*member;
            using T = std::decay_t<decltype(v)>;
            const std::string flag = "--" + std::string(o.flag);
            if constexpr (std::is_same_v<T, std::string>) {
                return check_text(o, v);
            } else if constexpr (std::is_same_v<T, std::optional<int64_t>> ||
                                 std::is_same_v<T, std::optional<double>>) {
                if (!v || in_range(o, static_cast<double>(*v))) return "";
                return flag + " must be " + option_range_text(o) + ", got " + number_text(*v);
            } else if constexpr (std::is_same_v<T, uint64_t>) {
                return "";  // every seed is a seed
            } else {
                if (in_range(o, static_cast<double>(v))) return "";
                return flag + " must be " + option_range_text(o) + ", got " + number_text(v);
            }
        },
        o.field);
}

std::string option_range_text(const OptionSpec& o) {
    if (o.choices) return "one of " + list(o.choices());
    if (!o.is_integer() && !o.is_real()) return "text";
    const std::string lo = format_real(o.lo), hi = format_real(o.hi);
    if (std::isinf(o.hi)) return (o.lo_open ? "> " : ">= ") + lo;
    return "in " + std::string(o.lo_open ? "(" : "[") + lo + ", " + hi + (o.hi_open ? ")" : "]");
}

bool same_value(const OptionSpec& o, const TrainConfig& a, const TrainConfig& b) {
    return std::visit([&](auto member) { return a.*member == b.*member; }, o.field);
}

void copy_value(const OptionSpec& o, const TrainConfig& from, TrainConfig& to) {
    std::visit([&](auto member) { to.*member = from.*member; }, o.field);
}

std::optional<double> preset_value(const OptionSpec& option, const TrainConfig& config) {
    const ModelKnob* knob = find_knob(option.name);
    if (!knob) return std::nullopt;
    try {
        const ModelConfig m = preset(config.preset, parse_attention_kind(config.attention));
        return std::visit([&](auto member) { return static_cast<double>(m.*member); }, knob->model);
    } catch (const std::invalid_argument&) {
        return std::nullopt;
    }
}

ModelConfig model_config(const TrainConfig& config) {
    ModelConfig mc = preset(config.preset, parse_attention_kind(config.attention));
    for (const auto& knob : kModelKnobs) {
        std::visit(
            [&](auto given, auto member) {
                using T = std::decay_t<decltype(mc.*member)>;
                if (config.*given) mc.*member = static_cast<T>(*(config.*given));
            },
            knob.given, knob.model);
    }
    mc.dropout = config.dropout;
    mc.embed_dropout = config.embed_dropout;
    mc.mlp_dropout = config.mlp_dropout;
    mc.embed_init_std = config.embed_init_std;
    if (mc.n_heads >= 1 && mc.d_model % mc.n_heads != 0) {
        auto whose = [&](bool set) { return set ? "" : " (the preset's)"; };
        throw std::invalid_argument("--d-model " + std::to_string(mc.d_model) +
                                    whose(config.d_model.has_value()) +
                                    " is not divisible by --n-heads " + std::to_string(mc.n_heads) +
                                    whose(config.n_heads.has_value()));
    }
    mc.validate();
    return mc;
}

}  // namespace krause
