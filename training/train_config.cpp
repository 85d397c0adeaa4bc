// TrainConfig validation and JSON form (stored in every checkpoint's metadata).
#include "training/train_config.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>
#include <stdexcept>

namespace krause {

namespace {

constexpr double kMaxEpochs = 1e6;

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

}  // namespace

void TrainConfig::validate() const {
    auto require = [](bool ok, const std::string& what) {
        if (!ok) throw std::invalid_argument("invalid training option: " + what);
    };
    require(!out_dir.empty(), "the output folder is not set");
    require(batch_size >= 1 && batch_size <= 65536, "batch size must be in 1..65536");
    require(steps >= 1 || epochs > 0, "steps must be >= 1 (or epochs > 0)");
    // The trainer turns epochs into a step count; an unbounded value would overflow int64.
    require(epochs >= 0 && epochs <= kMaxEpochs, "epochs must be in [0, 1e6]");
    require(lr > 0 && lr < 10, "learning rate must be in (0, 10)");
    require(weight_decay >= 0 && std::isfinite(weight_decay),
            "weight decay must be >= 0 and finite");
    require(warmup >= 0 && warmup < 1, "warm-up fraction must be in [0, 1)");
    require(min_lr >= 0 && min_lr <= lr, "min lr must be in [0, lr]");
    require(grad_clip >= 0 && std::isfinite(grad_clip), "gradient clip must be >= 0 and finite");
    require(dropout >= 0 && dropout < 1, "dropout must be in [0, 1)");
    require(embed_dropout >= 0 && embed_dropout < 1, "embedding dropout must be in [0, 1)");
    require(mlp_dropout >= 0 && mlp_dropout < 1, "MLP dropout must be in [0, 1)");
    require(embed_init_std > 0 && std::isfinite(embed_init_std),
            "embedding init std must be > 0 and finite");
    require(train_limit >= 0 && eval_limit >= 0, "limits must be >= 0");
    require(eval_every >= 0 && checkpoint_every >= 0, "intervals must be >= 0");
    require(log_every >= 1, "log interval must be >= 1");
    require(preview_count >= 0 && preview_count <= 256, "preview count must be in 0..256");
    require(device == "auto" || device == "cpu" || device == "cuda",
            "device must be auto, cpu or cuda");
    require(precision == "bf16" || precision == "fp32", "precision must be bf16 or fp32");
    require(threads >= 0, "threads must be >= 0");
}

std::string TrainConfig::to_json() const {
    nlohmann::json j = {
        {"preset", preset}, {"attention", attention}, {"data", data}, {"out_dir", out_dir},
        {"batch_size", batch_size}, {"steps", steps}, {"epochs", epochs}, {"lr", lr},
        {"weight_decay", weight_decay}, {"warmup", warmup}, {"min_lr", min_lr},
        {"grad_clip", grad_clip}, {"dropout", dropout}, {"embed_dropout", embed_dropout},
        {"mlp_dropout", mlp_dropout}, {"embed_init_std", embed_init_std}, {"train_limit", train_limit},
        {"eval_every", eval_every}, {"eval_limit", eval_limit},
        {"checkpoint_every", checkpoint_every}, {"log_every", log_every},
        {"preview_count", preview_count}, {"seed", seed}, {"device", device},
        {"precision", precision}, {"threads", threads},
    };
    return j.dump();
}

TrainConfig TrainConfig::from_json(const std::string& text) {
    const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
        throw std::invalid_argument("training config is not a JSON object");
    }
    TrainConfig c;
    try {
        c.preset = j.value("preset", c.preset);
        c.attention = j.value("attention", c.attention);
        c.data = j.value("data", c.data);
        c.out_dir = j.value("out_dir", c.out_dir);
        read_int(j, "batch_size", c.batch_size);
        read_int(j, "steps", c.steps);
        c.epochs = j.value("epochs", c.epochs);
        c.lr = j.value("lr", c.lr);
        c.weight_decay = j.value("weight_decay", c.weight_decay);
        c.warmup = j.value("warmup", c.warmup);
        c.min_lr = j.value("min_lr", c.min_lr);
        c.grad_clip = j.value("grad_clip", c.grad_clip);
        c.dropout = j.value("dropout", c.dropout);
        c.embed_dropout = j.value("embed_dropout", c.embed_dropout);
        c.mlp_dropout = j.value("mlp_dropout", c.mlp_dropout);
        c.embed_init_std = j.value("embed_init_std", c.embed_init_std);
        read_int(j, "train_limit", c.train_limit);
        read_int(j, "eval_every", c.eval_every);
        read_int(j, "eval_limit", c.eval_limit);
        read_int(j, "checkpoint_every", c.checkpoint_every);
        read_int(j, "log_every", c.log_every);
        read_int(j, "preview_count", c.preview_count);
        read_int(j, "seed", c.seed);
        c.device = j.value("device", c.device);
        c.precision = j.value("precision", c.precision);
        read_int(j, "threads", c.threads);
    } catch (const nlohmann::json::exception& e) {
        throw std::invalid_argument(std::string("training config: ") + e.what());
    }
    c.validate();
    return c;
}

}  // namespace krause
