// Saving and loading PixelTransformer checkpoints with their config in __metadata__.
#include "model/checkpoint.h"

#include <torch/nn/module.h>

#include <set>
#include <sstream>

namespace krause {

NamedTensors model_tensors(PixelTransformer& model) {
    NamedTensors out;
    for (const auto& item : model->named_parameters(/*recurse=*/true)) {
        out.emplace_back(item.key(), item.value());
    }
    return out;
}

void save_checkpoint(const std::string& path, PixelTransformer& model, const Metadata& metadata,
                     const NamedTensors& extra_tensors, bool bf16) {
    NamedTensors tensors;
    {
        torch::NoGradGuard no_grad;
        for (auto& [name, t] : model_tensors(model)) {
            tensors.emplace_back(name, (bf16 ? t.detach().to(at::kBFloat16) : t.detach()));
        }
    }
    std::set<std::string> names;
    for (const auto& entry : tensors) names.insert(entry.first);
    for (const auto& entry : extra_tensors) {
        if (names.count(entry.first)) {
            throw CheckpointError(path + ": extra tensor '" + entry.first +
                                  "' collides with a model parameter");
        }
        tensors.push_back(entry);
    }
    Metadata meta = metadata;
    meta[kMetaFormat] = kCheckpointFormat;
    meta[kMetaVersion] = std::to_string(kCheckpointVersion);
    meta[kMetaModelConfig] = model->config().to_json();
    write_safetensors(path, tensors, meta);
}

namespace {

// A lower bound on the parameters of a model of this config: per layer the four attention
// projections and the two MLP matrices (12 d^2), plus pos_emb (T, d), tok_emb and head (256, d).
int64_t min_parameter_count(const ModelConfig& c) {
    const int64_t d = c.d_model;
    return c.n_layers * 12 * d * d + (c.seq_len() + 512) * d;
}

}  // namespace

LoadedCheckpoint load_checkpoint(const std::string& path) {
    SafetensorsFile file = read_safetensors(path);
    auto meta = [&](const char* key) -> const std::string& {
        const auto it = file.metadata.find(key);
        if (it == file.metadata.end()) {
            throw CheckpointError(path + ": not a Krause Studio checkpoint (no '" +
                                  std::string(key) + "' in __metadata__)");
        }
        return it->second;
    };
    if (meta(kMetaFormat) != kCheckpointFormat) {
        throw CheckpointError(path + ": unknown checkpoint format '" + meta(kMetaFormat) + "'");
    }
    if (meta(kMetaVersion) != std::to_string(kCheckpointVersion)) {
        throw CheckpointError(path + ": unsupported checkpoint version '" + meta(kMetaVersion) +
                              "' (this build reads version " + std::to_string(kCheckpointVersion) +
                              ")");
    }
    ModelConfig config;
    try {
        config = ModelConfig::from_json(meta(kMetaModelConfig));
    } catch (const std::exception& e) {
        throw CheckpointError(path + ": " + e.what());
    }
    // The parameters live in the file, so a config that needs more values than the file holds is
    // damage; refusing it here keeps a tiny file from making us build a model of terabytes.
    int64_t stored_values = 0;
    for (const auto& entry : file.tensors) stored_values += entry.second.numel();
    if (stored_values < min_parameter_count(config)) {
        throw CheckpointError(path + ": model_config needs at least " +
                              std::to_string(min_parameter_count(config)) +
                              " parameters, but the file holds only " +
                              std::to_string(stored_values) + " values");
    }

    LoadedCheckpoint out;
    out.model = PixelTransformer(config);
    out.metadata = std::move(file.metadata);
    std::map<std::string, at::Tensor> stored;
    for (auto& [name, t] : file.tensors) stored.emplace(name, t);

    torch::NoGradGuard no_grad;
    for (auto& [name, param] : model_tensors(out.model)) {
        const auto it = stored.find(name);
        if (it == stored.end()) {
            throw CheckpointError(path + ": missing tensor '" + name + "'");
        }
        const auto& t = it->second;
        if (t.sizes() != param.sizes()) {
            std::ostringstream msg;
            msg << path << ": tensor '" << name << "' has shape " << t.sizes() << ", the config needs "
                << param.sizes();
            throw CheckpointError(msg.str());
        }
        if (!at::isFloatingType(t.scalar_type())) {
            throw CheckpointError(path + ": tensor '" + name + "' is not a floating-point tensor");
        }
        param.copy_(t.to(at::kFloat));
        stored.erase(it);
    }
    for (auto& [name, t] : file.tensors) {
        if (stored.count(name)) out.extra_tensors.emplace_back(name, t);
    }
    out.model->eval();
    return out;
}

}  // namespace krause
