// TrainConfig validation and JSON form (stored in every checkpoint's metadata), both made from
// the option table.
#include "training/train_config.h"

#include "training/options.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <variant>

namespace krause {

namespace {

// nlohmann converts a JSON float to an integer with a plain cast, undefined when it is out of
// range (e.g. 1e300): integer fields take JSON integers that fit, and nothing else.
template <typename Int>
void read_int(const nlohmann::json& j, const char* key, Int& out) {
    const auto it = j.find(key);
    if (it == j.end()) return;
    const auto bad = [&] {
        return std::invalid_argument(std::string("training config: '") + key +
                                     "' must be an integer in range, got " + it->dump());
    };
    if (!it->is_number_integer()) throw bad();
    if (it->is_number_unsigned()) {
        const auto v = it->template get<uint64_t>();
        if (v > static_cast<uint64_t>(std::numeric_limits<Int>::max())) throw bad();
        out = static_cast<Int>(v);
        return;
    }
    const auto v = it->template get<int64_t>();
    if (v < 0 && !std::numeric_limits<Int>::is_signed) throw bad();
    if (std::numeric_limits<Int>::is_signed &&
        (v < static_cast<int64_t>(std::numeric_limits<Int>::min()) ||
         v > static_cast<int64_t>(std::numeric_limits<Int>::max()))) {
        throw bad();
    }
    out = static_cast<Int>(v);
}

// A JSON value into one option's field; absent keys keep the default, null unsets an optional.
void read_option(const nlohmann::json& j, const OptionSpec& o, TrainConfig& c) {
    const auto it = j.find(o.name);
    if (it == j.end()) return;
    std::visit(
        [&](auto member) {
            auto& v = c.*member;
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, std::string>) {
                v = it->template get<std::string>();
            } else if constexpr (std::is_same_v<T, std::optional<int64_t>>) {
                if (it->is_null()) {
                    v.reset();
                } else {
                    int64_t x = 0;
                    read_int(j, o.name, x);
                    v = x;
                }
            } else if constexpr (std::is_same_v<T, std::optional<double>>) {
                v = it->is_null() ? std::nullopt : std::optional<double>(it->template get<double>());
            } else if constexpr (std::is_floating_point_v<T>) {
                v = it->template get<double>();
            } else {
                read_int(j, o.name, v);
            }
        },
        o.field);
}

}  // namespace

void TrainConfig::validate() const {
    auto require = [](bool ok, const std::string& what) {
        if (!ok) throw std::invalid_argument("invalid training option: " + what);
    };
    for (const auto& o : train_options()) {
        const std::string error = check_option(o, *this);
        require(error.empty(), error);
    }
    require(min_lr <= lr, "--min-lr " + option_text(*find_option("min_lr"), *this) +
                              " must not exceed --lr " + option_text(*find_option("lr"), *this));
    try {
        model_config(*this);
    } catch (const std::invalid_argument& e) {
        require(false, e.what());
    }
}

std::string TrainConfig::to_json() const {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& o : train_options()) {
        std::visit(
            [&](auto member) {
                const auto& v = this->*member;
                using T = std::decay_t<decltype(v)>;
                if constexpr (std::is_same_v<T, std::optional<int64_t>> ||
                              std::is_same_v<T, std::optional<double>>) {
                    if (v) j[o.name] = *v;
                } else {
                    j[o.name] = v;
                }
            },
            o.field);
    }
    return j.dump();
}

TrainConfig TrainConfig::from_json(const std::string& text) {
    const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
        throw std::invalid_argument("training config is not a JSON object");
    }
    TrainConfig c;
    try {
        for (const auto& o : train_options()) read_option(j, o, c);
    } catch (const nlohmann::json::exception& e) {
        throw std::invalid_argument(std::string("training config: ") + e.what());
    }
    c.validate();
    return c;
}

}  // namespace krause
