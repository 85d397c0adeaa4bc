// TrainConfig validation and JSON form (stored in every checkpoint's metadata).
#include "training/train_config.h"

#include <nlohmann/json.hpp>

#include <stdexcept>

namespace krause {

void TrainConfig::validate() const {
    auto require = [](bool ok, const std::string& what) {
        if (!ok) throw std::invalid_argument("invalid training option: " + what);
    };
    require(!out_dir.empty(), "--out must name a folder");
    require(batch_size >= 1 && batch_size <= 65536, "batch size must be in 1..65536");
    require(steps >= 1 || epochs > 0, "steps must be >= 1 (or epochs > 0)");
    require(epochs >= 0, "epochs must be >= 0");
    require(lr > 0 && lr < 10, "learning rate must be in (0, 10)");
    require(weight_decay >= 0, "weight decay must be >= 0");
    require(warmup >= 0 && warmup < 1, "warm-up fraction must be in [0, 1)");
    require(min_lr >= 0 && min_lr <= lr, "min lr must be in [0, lr]");
    require(grad_clip >= 0, "gradient clip must be >= 0");
    require(dropout >= 0 && dropout < 1, "dropout must be in [0, 1)");
    require(train_limit >= 0 && eval_limit >= 0, "limits must be >= 0");
    require(eval_every >= 0 && checkpoint_every >= 0, "intervals must be >= 0");
    require(log_every >= 1, "log interval must be >= 1");
    require(preview_count >= 0 && preview_count <= 256, "preview count must be in 0..256");
    require(device == "auto" || device == "cpu" || device == "cuda",
            "device must be auto, cpu or cuda");
    require(threads >= 0, "threads must be >= 0");
}

std::string TrainConfig::to_json() const {
    nlohmann::json j = {
        {"preset", preset}, {"attention", attention}, {"data", data}, {"out_dir", out_dir},
        {"batch_size", batch_size}, {"steps", steps}, {"epochs", epochs}, {"lr", lr},
        {"weight_decay", weight_decay}, {"warmup", warmup}, {"min_lr", min_lr},
        {"grad_clip", grad_clip}, {"dropout", dropout}, {"train_limit", train_limit},
        {"eval_every", eval_every}, {"eval_limit", eval_limit},
        {"checkpoint_every", checkpoint_every}, {"log_every", log_every},
        {"preview_count", preview_count}, {"seed", seed}, {"device", device},
        {"threads", threads},
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
        c.batch_size = j.value("batch_size", c.batch_size);
        c.steps = j.value("steps", c.steps);
        c.epochs = j.value("epochs", c.epochs);
        c.lr = j.value("lr", c.lr);
        c.weight_decay = j.value("weight_decay", c.weight_decay);
        c.warmup = j.value("warmup", c.warmup);
        c.min_lr = j.value("min_lr", c.min_lr);
        c.grad_clip = j.value("grad_clip", c.grad_clip);
        c.dropout = j.value("dropout", c.dropout);
        c.train_limit = j.value("train_limit", c.train_limit);
        c.eval_every = j.value("eval_every", c.eval_every);
        c.eval_limit = j.value("eval_limit", c.eval_limit);
        c.checkpoint_every = j.value("checkpoint_every", c.checkpoint_every);
        c.log_every = j.value("log_every", c.log_every);
        c.preview_count = j.value("preview_count", c.preview_count);
        c.seed = j.value("seed", c.seed);
        c.device = j.value("device", c.device);
        c.threads = j.value("threads", c.threads);
    } catch (const nlohmann::json::exception& e) {
        throw std::invalid_argument(std::string("training config: ") + e.what());
    }
    c.validate();
    return c;
}

}  // namespace krause
