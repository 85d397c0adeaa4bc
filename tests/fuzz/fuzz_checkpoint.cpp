// Fuzzes the checkpoint loader (model/checkpoint.h): load_checkpoint on a scratch file. Only
// CheckpointError naming the file may escape; a loaded model must match its stored config.
#include "fuzz_util.h"
#include "model/checkpoint.h"

#include <torch/nn/module.h>

#include <fstream>
#include <iterator>

using namespace krause;
using namespace krause::fuzz;

namespace {

ModelConfig micro(AttentionKind kind) {
    ModelConfig c;
    c.image_height = 2;
    c.image_width = 2;
    c.image_channels = 1;
    c.d_model = 4;
    c.n_heads = 2;
    c.n_layers = 1;
    c.attention = kind;
    c.window = 2;
    c.top_k = 1;
    c.dropout = 0.0;
    return c;
}

Bytes saved(const ModelConfig& config, const Metadata& meta, const NamedTensors& extra, bool bf16) {
    const std::string path = scratch_dir() + "/seed.safetensors";
    PixelTransformer model(config);
    save_checkpoint(path, model, meta, extra, bf16);
    std::ifstream in(path, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), {});
}

std::vector<std::pair<std::string, Bytes>> seeds() {
    torch::manual_seed(1);
    std::vector<std::pair<std::string, Bytes>> out;
    for (AttentionKind k : {AttentionKind::Krause, AttentionKind::Softmax, AttentionKind::Linear}) {
        out.emplace_back("micro-" + to_string(k), saved(micro(k), {}, {}, true));
    }
    out.emplace_back("micro-fp32-train",
                     saved(micro(AttentionKind::Krause),
                           {{"step", "3"}, {"optimizer_steps", "3"}, {"dataset", "mnist"}},
                           {{"optim.exp_avg", at::zeros({3})}}, false));
    // A tiny file whose config asks for a model of terabytes: loading must refuse it before
    // building the model.
    ModelConfig huge = micro(AttentionKind::Linear);
    huge.d_model = 16384;
    huge.n_heads = 1;
    huge.n_layers = 256;
    PixelTransformer model(micro(AttentionKind::Linear));
    const std::string path = scratch_dir() + "/huge.safetensors";
    write_safetensors(path, model_tensors(model),
                      {{kMetaFormat, kCheckpointFormat},
                       {kMetaVersion, std::to_string(kCheckpointVersion)},
                       {kMetaModelConfig, huge.to_json()}});
    std::ifstream in(path, std::ios::binary);
    out.emplace_back("huge-config", Bytes(std::istreambuf_iterator<char>(in), {}));
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    maybe_write_seeds(seeds);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string path = scratch_dir() + "/input.safetensors";
    write_file(path, data, size);
    try {
        LoadedCheckpoint ck = load_checkpoint(path);
        const ModelConfig& config = ck.model->config();
        if (ModelConfig::from_json(ck.metadata.at(kMetaModelConfig)) != config) std::abort();
        for (const auto& [name, t] : model_tensors(ck.model)) {
            if (t.scalar_type() != at::kFloat) std::abort();
        }
    } catch (const CheckpointError& e) {
        expect_names(e, path);
    } catch (const std::exception& e) {
        unexpected("std::exception", &e);
    }
    return 0;
}
