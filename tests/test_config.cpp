// ModelConfig: presets, validation and JSON round trip.
#include "model/config.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <stdexcept>

namespace krause {

TEST(Config, PaperPresetsHaveThePaperShapes) {
    const auto m = preset("mnist");
    EXPECT_EQ(m.seq_len(), 784);
    EXPECT_EQ(m.d_model, 256);
    EXPECT_EQ(m.n_heads, 8);
    EXPECT_EQ(m.n_layers, 12);
    EXPECT_EQ(m.window, 128);
    EXPECT_EQ(m.top_k, 96);
    EXPECT_DOUBLE_EQ(m.init_sigma, 2.5);
    const auto c = preset("cifar10", AttentionKind::Softmax);
    EXPECT_EQ(c.seq_len(), 3072);
    EXPECT_EQ(c.d_model, 512);
    EXPECT_EQ(c.n_layers, 16);
    EXPECT_EQ(c.window, 256);
    EXPECT_EQ(c.top_k, 192);
    EXPECT_EQ(c.attention, AttentionKind::Softmax);
}

TEST(Config, JsonRoundTripIsExact) {
    for (const auto& name : preset_names()) {
        for (auto kind : {AttentionKind::Krause, AttentionKind::Softmax, AttentionKind::Linear}) {
            const auto c = preset(name, kind);
            EXPECT_EQ(ModelConfig::from_json(c.to_json()), c) << name;
        }
    }
}

TEST(Config, RegularisationFieldsRoundTripAndDefaultWhenAbsent) {
    auto c = preset("mnist");
    c.embed_dropout = 0.1;
    c.mlp_dropout = 0.2;
    c.embed_init_std = 1.0;
    EXPECT_EQ(ModelConfig::from_json(c.to_json()), c);
    // A config written before these fields existed loads with their defaults.
    auto j = nlohmann::json::parse(c.to_json());
    j.erase("embed_dropout");
    j.erase("mlp_dropout");
    j.erase("embed_init_std");
    const auto old = ModelConfig::from_json(j.dump());
    EXPECT_EQ(old.embed_dropout, 0.0);
    EXPECT_EQ(old.mlp_dropout, 0.0);
    EXPECT_EQ(old.embed_init_std, 0.02);
    for (auto bad : {-0.1, 1.0}) {
        auto d = preset("mnist");
        d.embed_dropout = bad;
        EXPECT_THROW(d.validate(), std::invalid_argument) << bad;
        d = preset("mnist");
        d.mlp_dropout = bad;
        EXPECT_THROW(d.validate(), std::invalid_argument) << bad;
    }
    c.embed_init_std = 0.0;
    EXPECT_THROW(c.validate(), std::invalid_argument);
    j["embed_init_std"] = "wide";
    EXPECT_THROW(ModelConfig::from_json(j.dump()), std::invalid_argument);
}

TEST(Config, RejectsBadValuesAndNames) {
    EXPECT_THROW(preset("imagenet"), std::invalid_argument);
    EXPECT_THROW(parse_attention_kind("flash"), std::invalid_argument);
    auto c = preset("mnist");
    c.n_heads = 7;
    EXPECT_THROW(c.validate(), std::invalid_argument);
    c = preset("mnist");
    c.top_k = 0;
    EXPECT_THROW(c.validate(), std::invalid_argument);
    EXPECT_THROW(ModelConfig::from_json("not json"), std::invalid_argument);
    EXPECT_THROW(ModelConfig::from_json("[1,2]"), std::invalid_argument);
    EXPECT_THROW(ModelConfig::from_json(R"({"d_model": 3})"), std::invalid_argument);
    auto text = preset("mnist").to_json();
    text.replace(text.find("\"krause\""), 8, "\"bogus\"");
    EXPECT_THROW(ModelConfig::from_json(text), std::invalid_argument);
}

}  // namespace krause
