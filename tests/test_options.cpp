// The option table: every option reaches the CLI and the JSON form, validation names bad values,
// the resume merge follows each option's rule, and the model options shape the model trained.
#include "model/safetensors.h"
#include "test_util.h"
#include "training/estimate.h"
#include "training/options.h"
#include "training/trainer.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <cstdlib>
#include <set>
#include <sstream>

namespace krause {
namespace {

// A valid value for `o` that differs from its default.
std::string other_value(const OptionSpec& o) {
    const TrainConfig d;
    if (o.text == TextKind::DataSpec) return o.choices().back() + ":/tmp/elsewhere";
    if (o.text == TextKind::Choice) {
        for (const auto& c : o.choices()) {
            if (c != option_text(o, d)) return c;
        }
    }
    if (o.is_optional()) {
        const auto v = preset_value(o, d);
        EXPECT_TRUE(v.has_value()) << o.name;
        std::ostringstream text;
        text << v.value_or(1);
        return text.str();
    }
    if (o.is_integer()) {
        const double v = std::stod(option_text(o, d));
        return std::to_string(static_cast<long long>(v + (v + 1 <= o.hi ? 1 : -1)));
    }
    if (o.is_real()) {
        const double v = std::stod(option_text(o, d));
        std::ostringstream text;
        text << (v == 0 ? 0.5 : v / 2);
        return text.str();
    }
    return "x-" + option_text(o, d);
}

TEST(Options, NamesFlagsAndSettingKeysAreUniqueAndDocumented) {
    std::set<std::string> names, flags, keys;
    for (const auto& o : train_options()) {
        EXPECT_TRUE(names.insert(o.name).second) << o.name;
        EXPECT_TRUE(flags.insert(o.flag).second) << o.flag;
        EXPECT_TRUE(keys.insert(o.setting_key()).second) << o.setting_key();
        EXPECT_GT(std::string(o.help).size(), 8u) << o.name;
        EXPECT_GT(std::string(o.label).size(), 1u) << o.name;
        EXPECT_EQ(check_option(o, TrainConfig()), "") << "the default of " << o.name;
        if (o.text != TextKind::Free) {
            ASSERT_NE(o.choices, nullptr) << o.name;
            EXPECT_FALSE(o.choices().empty()) << o.name;
        }
    }
    EXPECT_EQ(find_option("batch"), find_option("batch_size"));
    EXPECT_EQ(find_option("no-such-option"), nullptr);
}

TEST(Options, JsonRoundTripCoversExactlyTheTable) {
    TrainConfig c;
    for (const auto& o : train_options()) set_option(o, c, other_value(o));
    for (const auto& o : train_options()) {
        EXPECT_FALSE(same_value(o, c, TrainConfig())) << o.name << " kept its default";
    }
    const auto j = nlohmann::json::parse(c.to_json());
    std::set<std::string> keys, names;
    for (const auto& item : j.items()) keys.insert(item.key());
    for (const auto& o : train_options()) names.insert(o.name);
    EXPECT_EQ(keys, names);
    const auto back = TrainConfig::from_json(c.to_json());
    for (const auto& o : train_options()) {
        EXPECT_TRUE(same_value(o, back, c))
            << o.name << ": " << option_text(o, back) << " vs " << option_text(o, c);
    }
    // Unset model options are left out, and an old config without them reads them as unset.
    const auto plain = nlohmann::json::parse(TrainConfig().to_json());
    EXPECT_FALSE(plain.contains("window"));
    EXPECT_FALSE(TrainConfig::from_json(plain.dump()).window.has_value());
}

TEST(Options, TextFormRoundTripsAndBadTextIsRefused) {
    TrainConfig c;
    for (const auto& o : train_options()) {
        TrainConfig d;
        set_option(o, d, option_text(o, c));
        EXPECT_TRUE(same_value(o, c, d)) << o.name;
    }
    const std::vector<std::pair<std::string, std::string>> bad = {
        {"batch", "0"},     {"batch", "4x"},        {"lr", "0"},
        {"lr", "nan"},      {"dropout", "1"},       {"dropout", "-0.1"},
        {"preset", "huge"}, {"attention", "flash"}, {"data", "imagenet"},
        {"data", "mnist:"}, {"device", "tpu"},      {"precision", "fp16"},
        {"preview", "257"}, {"seed", "-1"},         {"window", "0"},
        {"top-k", "0"},     {"init-sigma", "0"},    {"init-sigma", "-1"},
        {"out", ""},        {"threads", "1e3"},     {"steps", "99999999999999999999"},
    };
    for (const auto& [flag, text] : bad) {
        TrainConfig d;
        try {
            set_option(*find_option(flag), d, text);
            ADD_FAILURE() << "--" << flag << " " << text << " was accepted";
        } catch (const std::invalid_argument& e) {
            EXPECT_NE(std::string(e.what()).find("--" + flag), std::string::npos) << e.what();
        }
    }
}

std::string validate_error(const TrainConfig& c) {
    try {
        c.validate();
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "";
}

TEST(Options, ModelOptionsOverrideThePresetAndBadOnesAreNamed) {
    TrainConfig c;
    c.preset = "mnist-tiny";
    c.attention = "krause";
    auto m = model_config(c);
    EXPECT_EQ(m.window, preset("mnist-tiny").window);
    c.window = 16;
    c.top_k = 8;
    c.init_sigma = 1.5;
    c.n_layers = 3;
    m = model_config(c);
    EXPECT_EQ(m.window, 16);
    EXPECT_EQ(m.top_k, 8);
    EXPECT_EQ(m.init_sigma, 1.5);
    EXPECT_EQ(m.n_layers, 3);
    EXPECT_EQ(m.d_model, preset("mnist-tiny").d_model);
    // Top-K at or above the window keeps the whole window: valid.
    c.top_k = 64;
    EXPECT_EQ(validate_error(c), "");

    auto with = [](auto change) {
        TrainConfig d;
        d.preset = "mnist-tiny";
        change(d);
        return validate_error(d);
    };
    auto e = with([](TrainConfig& d) { d.window = 0; });
    EXPECT_NE(e.find("--window must be >= 1, got 0"), std::string::npos) << e;
    e = with([](TrainConfig& d) { d.top_k = -3; });
    EXPECT_NE(e.find("--top-k must be >= 1, got -3"), std::string::npos) << e;
    e = with([](TrainConfig& d) { d.init_sigma = 0.0; });
    EXPECT_NE(e.find("--init-sigma must be > 0, got 0"), std::string::npos) << e;
    e = with([](TrainConfig& d) {
        d.d_model = 100;
        d.n_heads = 3;
    });
    EXPECT_NE(e.find("--d-model 100 is not divisible by --n-heads 3"), std::string::npos) << e;
    e = with([](TrainConfig& d) { d.d_model = 66; });  // mnist-tiny has 4 heads
    EXPECT_NE(e.find("--d-model 66 is not divisible by --n-heads 4 (the preset's)"),
              std::string::npos)
        << e;
    e = with([](TrainConfig& d) { d.preset = "imagenet"; });
    EXPECT_NE(e.find("--preset must be one of"), std::string::npos) << e;
    e = with([](TrainConfig& d) { d.min_lr = 0.5; });
    EXPECT_NE(e.find("--min-lr 0.5 must not exceed --lr 0.001"), std::string::npos) << e;
}

// A checkpoint holding only a stored training config, as resume_config reads it.
std::string stored_run(const std::string& dir, const TrainConfig& stored) {
    const std::string path = dir + "/stored.safetensors";
    write_safetensors(path, {{"x", at::zeros({1})}}, {{kMetaTrainConfig, stored.to_json()}});
    return path;
}

// The long-run warning's estimate follows the model options, not the preset alone.
TEST(Options, TrainingEstimateFollowsTheModelOptions) {
    TrainConfig config;
    config.preset = "mnist-small";
    const double preset_flops = training_step_flops(config);
    config.n_layers = 8;  // the preset has 4
    EXPECT_NEAR(training_step_flops(config) / preset_flops, 2.0, 0.2);
    config.n_layers.reset();
    config.d_model = 64;  // half the preset's width: about a quarter of the dense work
    EXPECT_LT(training_step_flops(config), 0.5 * preset_flops);
}

TEST(Options, ResumeTakesStoredOptionsUnlessGiven) {
    const test::TempDir tmp("options-resume");
    const std::string dir = tmp.path();
    TrainConfig stored;
    stored.preset = "mnist-tiny";
    stored.window = 12;
    stored.lr = 0.002;
    stored.min_lr = 1e-4;
    stored.steps = 10;
    stored.epochs = 2;
    stored.minutes = 3;
    stored.eval_every = 5;
    stored.inject_nan_at = 3;
    TrainConfig given;
    given.resume = stored_run(dir, stored);
    given.steps = 20;
    given.eval_every = 7;  // not marked as given: the stored value stays
    given.lr = 0.1;        // likewise: a default the user did not choose
    auto merged = resume_config(given, {"steps", "resume"});
    EXPECT_EQ(merged.steps, 20);
    EXPECT_EQ(merged.epochs, 0) << "--steps alone replaces stored epochs";
    EXPECT_EQ(merged.minutes, 0) << "--steps replaces a stored time budget";
    EXPECT_EQ(resume_config(given, {"resume"}).minutes, 3) << "a time budget is kept";
    EXPECT_EQ(merged.eval_every, 5);
    EXPECT_EQ(merged.lr, 0.002);
    EXPECT_EQ(merged.preset, "mnist-tiny");
    EXPECT_EQ(merged.window, std::optional<int64_t>(12));
    EXPECT_EQ(merged.inject_nan_at, -1) << "a test hook is never carried over";
    EXPECT_EQ(merged.resume, given.resume);

    // An option the weights depend on cannot change; the same value may be given.
    try {
        resume_config(given, {"lr"});
        ADD_FAILURE() << "a new learning rate was accepted";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("--lr 0.1 cannot change on resume"), std::string::npos)
            << e.what();
    }
    given.window = 12;
    EXPECT_NO_THROW(resume_config(given, {"window"}));
    given.window.reset();
    EXPECT_THROW(resume_config(given, {"window"}), std::invalid_argument);

    given.resume = dir + "/missing.safetensors";
    EXPECT_THROW(resume_config(given, {}), std::invalid_argument);
    write_safetensors(dir + "/model-only.safetensors", {{"x", at::zeros({1})}}, {});
    given.resume = dir + "/model-only.safetensors";
    EXPECT_THROW(resume_config(given, {}), std::invalid_argument);
}

struct Run {
    int code = -1;
    std::string out, err;
};

Run krause_cli(const std::string& args, const std::string& dir) {
    const std::string out = dir + "/stdout.txt", err = dir + "/stderr.txt";
    const std::string cmd = "cd '" + dir + "' && '" KRAUSE_CLI "' " + args + " >'" + out + "' 2>'" +
                            err + "' </dev/null";
    const int status = std::system(cmd.c_str());
    Run r;
    if (WIFEXITED(status)) r.code = WEXITSTATUS(status);
    r.out = test::read_file(out);
    r.err = test::read_file(err);
    return r;
}

// The --flags a command's help lists.
std::set<std::string> help_flags(const std::string& help) {
    std::set<std::string> flags;
    std::istringstream lines(help);
    for (std::string line; std::getline(lines, line);) {
        // An option's line starts with its names ("-h,--help", "--batch INT=16").
        std::string first;
        std::istringstream(line) >> first;
        const size_t at = first.find("--");
        if (first.empty() || first[0] != '-' || at == std::string::npos) continue;
        const std::string name = first.substr(at);
        flags.insert(name.substr(0, name.find_first_of(",=")));
    }
    return flags;
}

TEST(Options, CliFlagsCoverExactlyTheTable) {
    const test::TempDir tmp("options-cli");
    const std::string dir = tmp.path();
    auto r = krause_cli("train --help", dir);
    ASSERT_EQ(r.code, 0) << r.err;
    std::set<std::string> expected = {"--help"};
    for (const auto& o : train_options()) expected.insert("--" + std::string(o.flag));
    EXPECT_EQ(help_flags(r.out), expected) << r.out;

    r = krause_cli("init --help", dir);
    ASSERT_EQ(r.code, 0) << r.err;
    expected = {"--help", "--out"};
    for (const auto& o : train_options()) {
        if (o.model) expected.insert("--" + std::string(o.flag));
    }
    EXPECT_EQ(help_flags(r.out), expected) << r.out;
}

nlohmann::json stored_model_config(const std::string& path) {
    const auto file = read_safetensors(path);
    return nlohmann::json::parse(file.metadata.at("model_config"));
}

TEST(Options, TrainWithKrauseKnobsRecordsThemInTheCheckpoint) {
    const test::TempDir tmp("options-knobs");
    const std::string dir = tmp.path();
    const auto data_tmp = test::fake_mnist_dir(32, 8);
    const std::string data = data_tmp.path();
    auto r = krause_cli("train --preset mnist-tiny --window 16 --top-k 8 --data mnist:" + data +
                            " --steps 2 --batch 4 --eval-every 0 --eval-limit 4 --preview 0"
                            " --threads 1 --out run",
                        dir);
    ASSERT_EQ(r.code, 0) << r.err;
    auto mc = stored_model_config(dir + "/run/checkpoint.safetensors");
    EXPECT_EQ(mc["window"], 16);
    EXPECT_EQ(mc["top_k"], 8);
    EXPECT_EQ(mc["d_model"], preset("mnist-tiny").d_model);
    const auto file = read_safetensors(dir + "/run/checkpoint.safetensors");
    const auto tc = TrainConfig::from_json(file.metadata.at(kMetaTrainConfig));
    EXPECT_EQ(tc.window, std::optional<int64_t>(16));
    EXPECT_FALSE(tc.n_layers.has_value());

    // Resuming keeps them; a different window is refused before any work.
    r = krause_cli("train --resume run/checkpoint.safetensors --steps 3", dir);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(stored_model_config(dir + "/run/checkpoint.safetensors")["window"], 16);
    r = krause_cli("train --resume run/checkpoint.safetensors --steps 4 --window 20", dir);
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_NE(r.err.find("--window 20 cannot change on resume"), std::string::npos) << r.err;

    r = krause_cli(
        "init --preset mnist-tiny --attention krause --window 10 --top-k 40 "
        "--n-layers 1 --init-sigma 1.25 --out m.safetensors",
        dir);
    ASSERT_EQ(r.code, 0) << r.err;
    mc = stored_model_config(dir + "/m.safetensors");
    EXPECT_EQ(mc["window"], 10);
    EXPECT_EQ(mc["top_k"], 40);
    EXPECT_EQ(mc["n_layers"], 1);
    EXPECT_EQ(mc["init_sigma"], 1.25);
}

TEST(Options, BadModelOptionsAreRefusedBeforeLoadingData) {
    const test::TempDir tmp("options-bad");
    const std::string dir = tmp.path();
    // The data folder does not exist: an error about it would mean the options passed.
    const std::vector<std::pair<std::string, std::string>> bad = {
        {"--window 0", "--window must be >= 1, got 0"},
        {"--top-k 0", "--top-k must be >= 1, got 0"},
        {"--d-model 100 --n-heads 3", "--d-model 100 is not divisible by --n-heads 3"},
        {"--init-sigma -0.5", "--init-sigma must be > 0, got -0.5"},
        {"--preset huge", "--preset must be one of mnist, cifar10"},
        {"--attention flash", "--attention must be one of krause, softmax, linear"},
    };
    for (const auto& [args, message] : bad) {
        for (const std::string command :
             {"train --data mnist:/nonexistent --out run ", "init --out m.safetensors "}) {
            const auto r = krause_cli(command + args, dir);
            EXPECT_EQ(r.code, 2) << command << args << "\n" << r.err;
            EXPECT_NE(r.err.find("krause: error: invalid training option: " + message),
                      std::string::npos)
                << command << args << "\n"
                << r.err;
            EXPECT_EQ(r.out.find("loading data"), std::string::npos) << r.out;
            EXPECT_EQ(r.err.find("nonexistent"), std::string::npos) << r.err;
        }
    }
}

}  // namespace
}  // namespace krause
