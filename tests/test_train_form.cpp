// The studio's training form and `set` settings cover the option table exactly, checked without a
// display (the form is drawn from train_form_fields()).
#include "training/options.h"
#include "ui/actions.h"
#include "ui/messages.h"
#include "ui/settings.h"
#include "ui/train_form.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>

namespace krause::ui {
namespace {

TEST(TrainForm, DrawsEveryOptionOnce) {
    std::multiset<std::string> drawn;
    for (const auto& f : train_form_fields()) drawn.insert(f.option->name);
    std::multiset<std::string> table;
    for (const auto& o : train_options()) table.insert(o.name);
    EXPECT_EQ(drawn, table);
    for (const auto& f : train_form_fields()) {
        const bool preset_widget =
            f.widget == FormWidget::PresetInteger || f.widget == FormWidget::PresetReal;
        EXPECT_EQ(preset_widget, f.option->is_optional()) << f.option->name;
        if (f.widget == FormWidget::Combo) EXPECT_NE(f.option->choices, nullptr) << f.option->name;
    }
}

TEST(TrainForm, SettingsOfferEveryOptionWithTheTableChecks) {
    const auto names = setting_names();
    std::set<std::string> train;
    for (const auto& n : names) {
        if (n.rfind("train.", 0) == 0) train.insert(n);
    }
    std::set<std::string> expected;
    for (const auto& o : train_options()) expected.insert(o.setting_key());
    EXPECT_EQ(train, expected);

    StudioState state;
    std::string error;
    EXPECT_TRUE(apply_setting(state, "train.top_k", "8", &error)) << error;
    EXPECT_EQ(state.train.config.top_k, std::optional<int64_t>(8));
    EXPECT_EQ(state.train.given.count("top_k"), 1u);
    EXPECT_FALSE(apply_setting(state, "train.window", "0", &error));
    EXPECT_NE(error.find("--window must be >= 1, got 0"), std::string::npos) << error;
    EXPECT_FALSE(check_setting("train.dropout", "1", &error));
    EXPECT_NE(error.find("--dropout must be in [0, 1), got 1"), std::string::npos) << error;
    EXPECT_FALSE(check_setting("train.data", "imagenet", &error));
}

TEST(TrainForm, DataDirFollowsTheDataFolder) {
    StudioState state;
    state.data.dir = "/found/mnist";
    std::string error;
    EXPECT_FALSE(apply_setting(state, "data.dir", "/elsewhere/mnist", &error));
    EXPECT_EQ(error, "data.dir follows the data folder: choose that with data-folder PATH");
    EXPECT_EQ(state.data.dir, "/found/mnist") << "the folder shown stays the one loaded from";
    const auto names = setting_names();  // what `krause-studio --help` offers for `set`
    EXPECT_EQ(std::count(names.begin(), names.end(), "data.dir"), 0);
}

TEST(TrainForm, StartRefusesBadOptionsWithTheCliMessage) {
    StudioState state;
    std::string error;
    ASSERT_TRUE(apply_setting(state, "train.d_model", "100", &error)) << error;
    ASSERT_TRUE(apply_setting(state, "train.n_heads", "3", &error)) << error;
    EXPECT_FALSE(start_train(state, &error));
    EXPECT_EQ(error, "invalid training option: --d-model 100 is not divisible by --n-heads 3");
    EXPECT_EQ(state.train.job, nullptr) << "no work starts";

    ASSERT_TRUE(apply_setting(state, "train.n_heads", "4", &error)) << error;
    ASSERT_TRUE(apply_setting(state, "train.resume", "/nonexistent/run.safetensors", &error));
    EXPECT_FALSE(start_train(state, &error));
    EXPECT_NE(error.find("no such checkpoint to resume from"), std::string::npos) << error;
}

}  // namespace
// Errors shared with the CLI name an option by its flag; the studio shows the field's label.
TEST(TrainForm, ErrorsNameTheFieldsLabelInsteadOfTheFlag) {
    const std::string shown =
        for_studio("invalid training option: --d-model 100 is not divisible by --n-heads 3");
    EXPECT_EQ(shown.find("--"), std::string::npos) << shown;
    for (const char* flag : {"d-model", "n-heads"}) {
        EXPECT_NE(shown.find(std::string("\"") + find_option(flag)->label + "\" field"),
                  std::string::npos)
            << shown;
    }
    // A flag that only starts like an option's is not taken for it.
    EXPECT_EQ(for_studio("--batch-size 3"), "the batch size setting 3");
    EXPECT_EQ(for_studio("no flags here"), "no flags here");
}

}  // namespace krause::ui
