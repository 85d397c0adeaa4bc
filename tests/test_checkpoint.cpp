// Model checkpoints: exact round trip, config and shape validation.
#include "model/checkpoint.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <torch/nn/module.h>

#include <filesystem>
#include <set>

namespace krause {
namespace {

using test::TempDir;
using test::tiny_config;

TEST(Checkpoint, RoundTripIsExactForEveryKind) {
    const TempDir dir("ckpt");
    for (auto kind : {AttentionKind::Krause, AttentionKind::Softmax, AttentionKind::Linear}) {
        PixelTransformer model(tiny_config(kind, 5, 4, 3));
        {
            torch::NoGradGuard no_grad;
            for (auto& p : model->parameters()) p.normal_();
        }
        const auto path = dir / ("model-" + to_string(kind) + ".safetensors");
        save_checkpoint(path, model, {{"step", "17"}}, {{"optim.m", at::ones({3})}});
        const auto loaded = load_checkpoint(path);
        EXPECT_EQ(loaded.model->config(), model->config());
        EXPECT_EQ(loaded.metadata.at("step"), "17");
        ASSERT_EQ(loaded.extra_tensors.size(), 1u);
        EXPECT_EQ(loaded.extra_tensors[0].first, "optim.m");
        const auto a = model_tensors(model);
        const auto b = model_tensors(const_cast<PixelTransformer&>(loaded.model));
        ASSERT_EQ(a.size(), b.size());
        for (size_t i = 0; i < a.size(); ++i) {
            EXPECT_EQ(a[i].first, b[i].first);
            EXPECT_TRUE(at::equal(a[i].second, b[i].second)) << a[i].first;
        }
    }
}

TEST(Checkpoint, TensorNamesAreTheDocumentedOnes) {
    PixelTransformer model(tiny_config(AttentionKind::Krause));
    std::set<std::string> names;
    for (const auto& [name, t] : model_tensors(model)) names.insert(name);
    for (const char* expect :
         {"tok_emb.weight", "pos_emb", "prior", "ln_f.weight", "ln_f.bias", "head.weight",
          "head.bias", "blocks.0.ln1.weight", "blocks.0.ln1.bias", "blocks.0.attn.q_proj.weight",
          "blocks.0.attn.q_proj.bias", "blocks.0.attn.k_proj.weight", "blocks.0.attn.v_proj.weight",
          "blocks.0.attn.out_proj.weight", "blocks.0.attn.out_proj.bias", "blocks.0.attn.log_sigma",
          "blocks.1.ln2.weight", "blocks.1.fc1.weight", "blocks.1.fc1.bias", "blocks.1.fc2.weight",
          "blocks.1.fc2.bias"}) {
        EXPECT_TRUE(names.count(expect)) << expect;
    }
}

TEST(Checkpoint, Bf16StorageLoadsCloseToTheOriginal) {
    PixelTransformer model(tiny_config(AttentionKind::Krause));
    const TempDir dir("ckpt");
    const auto path = dir / "bf16.safetensors";
    save_checkpoint(path, model, {}, {}, /*bf16=*/true);
    const auto loaded = load_checkpoint(path);
    const auto a = model_tensors(model);
    const auto b = model_tensors(const_cast<PixelTransformer&>(loaded.model));
    for (size_t i = 0; i < a.size(); ++i) {
        EXPECT_TRUE(at::allclose(a[i].second, b[i].second, 1e-2, 1e-2)) << a[i].first;
    }
}

TEST(Checkpoint, RejectsForeignAndInconsistentFiles) {
    const TempDir dir("ckpt");
    const auto path = dir / "foreign.safetensors";
    write_safetensors(path, {{"x", at::ones({2})}}, {});
    EXPECT_THROW(load_checkpoint(path), CheckpointError);

    PixelTransformer model(tiny_config(AttentionKind::Krause));
    auto tensors = model_tensors(model);
    Metadata meta = {{kMetaFormat, kCheckpointFormat},
                     {kMetaVersion, std::to_string(kCheckpointVersion)},
                     {kMetaModelConfig, model->config().to_json()}};
    auto missing = tensors;
    missing.pop_back();
    write_safetensors(path, missing, meta);
    try {
        load_checkpoint(path);
        FAIL() << "a missing tensor must be rejected";
    } catch (const CheckpointError& e) {
        EXPECT_NE(std::string(e.what()).find("missing tensor"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
    auto reshaped = tensors;
    reshaped[0].second = at::zeros({3, 3});
    write_safetensors(path, reshaped, meta);
    EXPECT_THROW(load_checkpoint(path), CheckpointError);

    auto bad_config = meta;
    bad_config[kMetaModelConfig] = R"({"d_model": -1})";
    write_safetensors(path, tensors, bad_config);
    EXPECT_THROW(load_checkpoint(path), CheckpointError);

    auto future = meta;
    future[kMetaVersion] = "99";
    write_safetensors(path, tensors, future);
    EXPECT_THROW(load_checkpoint(path), CheckpointError);

    EXPECT_THROW(load_checkpoint(dir / "does-not-exist.safetensors"), CheckpointError);
}

}  // namespace
}  // namespace krause
