// Model checkpoints: a PixelTransformer's parameters and config in a safetensors file.
#pragma once

#include "model/safetensors.h"
#include "model/transformer.h"

#include <string>

namespace krause {

constexpr const char* kCheckpointFormat = "krause-studio-checkpoint";
constexpr int kCheckpointVersion = 1;

// Metadata keys written by save_checkpoint; callers add their own (training state and so on).
constexpr const char* kMetaFormat = "format";
constexpr const char* kMetaVersion = "format_version";
constexpr const char* kMetaModelConfig = "model_config";

// Extra tensors (e.g. optimizer state) must be named with a prefix other than the model's own
// parameter names; "optim." is the convention.
void save_checkpoint(const std::string& path, PixelTransformer& model, const Metadata& metadata = {},
                     const NamedTensors& extra_tensors = {}, bool bf16 = false);

struct LoadedCheckpoint {
    PixelTransformer model{nullptr};  // on the CPU, fp32, in eval mode
    Metadata metadata;
    NamedTensors extra_tensors;  // everything that is not a model parameter
};

// Validates the file, its format tag and model config, and that every parameter is present with
// the right shape; throws CheckpointError("<path>: <problem>") otherwise.
LoadedCheckpoint load_checkpoint(const std::string& path);

// The model parameters in checkpoint order, with their stable names.
NamedTensors model_tensors(PixelTransformer& model);

}  // namespace krause
