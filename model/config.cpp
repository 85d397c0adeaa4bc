// ModelConfig validation, presets and JSON (de)serialisation.
#include "model/config.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <stdexcept>

namespace krause {

std::string to_string(AttentionKind kind) {
    switch (kind) {
        case AttentionKind::Krause: return "krause";
        case AttentionKind::Softmax: return "softmax";
        case AttentionKind::Linear: return "linear";
    }
    return "unknown";
}

namespace {
constexpr AttentionKind kAttentionKinds[] = {AttentionKind::Krause, AttentionKind::Softmax,
                                             AttentionKind::Linear};
}  // namespace

std::vector<std::string> attention_names() {
    std::vector<std::string> names;
    for (auto kind : kAttentionKinds) names.push_back(to_string(kind));
    return names;
}

AttentionKind parse_attention_kind(const std::string& name) {
    std::string known;
    for (auto kind : kAttentionKinds) {
        if (name == to_string(kind)) return kind;
        known += (known.empty() ? "" : ", ") + to_string(kind);
    }
    throw std::invalid_argument("unknown attention kind '" + name + "' (expected one of: " +
                                known + ")");
}

void ModelConfig::validate() const {
    auto require = [](bool ok, const std::string& what) {
        if (!ok) throw std::invalid_argument("invalid model config: " + what);
    };
    require(image_height >= 1 && image_height <= 4096, "image_height must be in 1..4096");
    require(image_width >= 1 && image_width <= 4096, "image_width must be in 1..4096");
    require(image_channels == 1 || image_channels == 3, "image_channels must be 1 or 3");
    require(seq_len() >= 2 && seq_len() <= (1 << 20), "image must have 2..2^20 sub-pixels");
    require(d_model >= 1 && d_model <= 16384, "d_model must be in 1..16384");
    require(n_heads >= 1 && d_model % n_heads == 0, "n_heads must divide d_model");
    require(n_layers >= 1 && n_layers <= 256, "n_layers must be in 1..256");
    require(window >= 1, "window must be >= 1");
    require(top_k >= 1, "top_k must be >= 1");
    require(init_sigma > 0.0, "init_sigma must be > 0");
    require(dropout >= 0.0 && dropout < 1.0, "dropout must be in [0, 1)");
    require(embed_dropout >= 0.0 && embed_dropout < 1.0, "embed_dropout must be in [0, 1)");
    require(mlp_dropout >= 0.0 && mlp_dropout < 1.0, "mlp_dropout must be in [0, 1)");
    require(embed_init_std > 0.0 && std::isfinite(embed_init_std),
            "embed_init_std must be > 0 and finite");
}

std::string ModelConfig::to_json() const {
    nlohmann::json j = {
        {"image_height", image_height}, {"image_width", image_width},
        {"image_channels", image_channels}, {"d_model", d_model},
        {"n_heads", n_heads}, {"n_layers", n_layers},
        {"attention", to_string(attention)}, {"window", window},
        {"top_k", top_k}, {"init_sigma", init_sigma},
        {"dropout", dropout}, {"embed_dropout", embed_dropout},
        {"mlp_dropout", mlp_dropout}, {"embed_init_std", embed_init_std},
    };
    return j.dump();
}

ModelConfig ModelConfig::from_json(const std::string& text) {
    nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
        throw std::invalid_argument("model config is not a JSON object");
    }
    ModelConfig c;
    auto get_int = [&](const char* key, int64_t& out) {
        if (!j.contains(key) || !j[key].is_number_integer()) {
            throw std::invalid_argument(std::string("model config: missing integer '") + key + "'");
        }
        out = j[key].get<int64_t>();
    };
    auto get_real = [&](const char* key, double& out) {
        if (!j.contains(key) || !j[key].is_number()) {
            throw std::invalid_argument(std::string("model config: missing number '") + key + "'");
        }
        out = j[key].get<double>();
    };
    get_int("image_height", c.image_height);
    get_int("image_width", c.image_width);
    get_int("image_channels", c.image_channels);
    get_int("d_model", c.d_model);
    get_int("n_heads", c.n_heads);
    get_int("n_layers", c.n_layers);
    get_int("window", c.window);
    get_int("top_k", c.top_k);
    get_real("init_sigma", c.init_sigma);
    get_real("dropout", c.dropout);
    // Added later: configs written before them mean the defaults.
    auto get_optional_real = [&](const char* key, double& out) {
        if (j.contains(key)) get_real(key, out);
    };
    get_optional_real("embed_dropout", c.embed_dropout);
    get_optional_real("mlp_dropout", c.mlp_dropout);
    get_optional_real("embed_init_std", c.embed_init_std);
    if (!j.contains("attention") || !j["attention"].is_string()) {
        throw std::invalid_argument("model config: missing string 'attention'");
    }
    c.attention = parse_attention_kind(j["attention"].get<std::string>());
    c.validate();
    return c;
}

bool ModelConfig::operator==(const ModelConfig& o) const {
    return image_height == o.image_height && image_width == o.image_width &&
           image_channels == o.image_channels && d_model == o.d_model && n_heads == o.n_heads &&
           n_layers == o.n_layers && attention == o.attention && window == o.window &&
           top_k == o.top_k && init_sigma == o.init_sigma && dropout == o.dropout &&
           embed_dropout == o.embed_dropout && mlp_dropout == o.mlp_dropout &&
           embed_init_std == o.embed_init_std;
}

namespace {
ModelConfig shape(int64_t h, int64_t w, int64_t c, int64_t d, int64_t heads, int64_t layers,
                  int64_t window, int64_t top_k) {
    ModelConfig m;
    m.image_height = h;
    m.image_width = w;
    m.image_channels = c;
    m.d_model = d;
    m.n_heads = heads;
    m.n_layers = layers;
    m.window = window;
    m.top_k = top_k;
    return m;
}
}  // namespace

std::vector<std::string> preset_names() {
    return {"mnist", "cifar10", "mnist-small", "mnist-tiny", "cifar10-small", "cifar10-tiny"};
}

ModelConfig preset(const std::string& name, AttentionKind attention) {
    ModelConfig m;
    if (name == "mnist") {
        m = shape(28, 28, 1, 256, 8, 12, 128, 96);
    } else if (name == "cifar10") {
        m = shape(32, 32, 3, 512, 8, 16, 256, 192);
    } else if (name == "mnist-small") {
        m = shape(28, 28, 1, 128, 4, 4, 64, 48);
    } else if (name == "mnist-tiny") {
        m = shape(28, 28, 1, 64, 4, 2, 32, 24);
    } else if (name == "cifar10-small") {
        m = shape(32, 32, 3, 256, 8, 6, 128, 96);
    } else if (name == "cifar10-tiny") {
        m = shape(32, 32, 3, 128, 4, 6, 128, 96);
    } else {
        std::string known;
        for (const auto& n : preset_names()) known += (known.empty() ? "" : ", ") + n;
        throw std::invalid_argument("unknown preset '" + name + "' (expected one of: " + known +
                                    ")");
    }
    m.attention = attention;
    m.validate();
    return m;
}

}  // namespace krause
