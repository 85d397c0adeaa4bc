// The krause command line end to end: init -> train -> eval -> sample -> complete -> inspect,
// checking the files and JSON it writes, and the one-line error of every command.
#include "data_env.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <stb/stb_image.h>
#include <torch/cuda.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <sys/wait.h>

namespace krause {
namespace {

struct Run {
    int code = -1;  // exit status, or 128 + signal
    std::string out, err;
};

Run krause_cli(const std::string& args, const std::string& dir) {
    const std::string out = dir + "/stdout.txt", err = dir + "/stderr.txt";
    const std::string cmd = "cd '" + dir + "' && '" KRAUSE_CLI "' " + args + " >'" + out +
                            "' 2>'" + err + "' </dev/null";
    const int status = std::system(cmd.c_str());
    Run r;
    if (WIFEXITED(status)) r.code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) r.code = 128 + WTERMSIG(status);
    r.out = test::read_file(out);
    r.err = test::read_file(err);
    return r;
}

std::pair<int, int> png_size(const std::string& path) {
    int w = 0, h = 0, n = 0;
    if (!stbi_info(path.c_str(), &w, &h, &n)) return {-1, -1};
    return {w, h};
}

class Cli : public ::testing::Test {
protected:
    const test::TempDir tmp_{"cli"};
    const test::TempDir data_tmp_ = test::fake_mnist_dir(64, 16);
    const std::string dir_ = tmp_.path(), data_ = data_tmp_.path();
};

TEST_F(Cli, InitTrainEvalSampleCompleteInspect) {
    auto r = krause_cli("init --preset mnist-tiny --seed 1 --out fresh.safetensors", dir_);
    ASSERT_EQ(r.code, 0) << r.err;

    r = krause_cli("train --preset mnist-tiny --data mnist:" + data_ +
                       " --steps 6 --batch 4 --eval-every 3 --eval-limit 8 --preview 4"
                       " --threads 1 --out run",
                   dir_);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("finished at step 6"), std::string::npos) << r.out;
    EXPECT_NE(r.err.find("data: mnist from " + data_ +
                         ": 64 training images (of 60,000 in the official files) and 8 test "
                         "images\n"),
              std::string::npos)
        << r.err;
    // Without a terminal, progress is a log: each line once, the last one too (an evaluation's
    // line printed after it does not repeat it).
    const std::string last_line = "training 100% 6/6 steps";
    const auto first = r.err.find(last_line);
    ASSERT_NE(first, std::string::npos) << r.err;
    EXPECT_EQ(r.err.find(last_line, first + 1), std::string::npos) << r.err;
    EXPECT_EQ(png_size(dir_ + "/run/samples-6.png"), std::make_pair(57, 57));
    const std::string ckpt = "run/checkpoint.safetensors";

    r = krause_cli("eval --checkpoint " + ckpt + " --data mnist:" + data_ + " --json", dir_);
    ASSERT_EQ(r.code, 0) << r.err;
    const auto ev = nlohmann::json::parse(r.out);
    EXPECT_EQ(ev["images"].get<int64_t>(), 16);
    EXPECT_GT(ev["bpd_all"].get<double>(), 0.0);
    EXPECT_GT(ev["bpd_predicted"].get<double>(), 0.0);
    EXPECT_LT(ev["bpd_all"].get<double>(), 8.5);

    r = krause_cli("sample --checkpoint " + ckpt + " -n 4 --seed 3 --out s.png", dir_);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(png_size(dir_ + "/s.png"), std::make_pair(57, 57));

    r = krause_cli("complete --checkpoint " + ckpt + " --data mnist:" + data_ +
                       " --index 1 --rows 14 -n 3 --out c.png",
                   dir_);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(png_size(dir_ + "/c.png"), std::make_pair(5 * 28 + 4, 28));

    r = krause_cli("inspect --checkpoint " + ckpt + " --image mnist:" + data_ +
                       ":2 --pixel 14,14 --json",
                   dir_);
    ASSERT_EQ(r.code, 0) << r.err;
    const auto in = nlohmann::json::parse(r.out);
    EXPECT_EQ(in["sub_pixel"].get<int64_t>(), 14 * 28 + 14);
    ASSERT_EQ(in["layers"].size(), 2u);
    ASSERT_EQ(in["layers"][0]["heads"].size(), 4u);
    EXPECT_LE(in["layers"][0]["heads"][0]["attended"].get<int64_t>(), 24);  // top_k
    EXPECT_TRUE(in["layers"][1]["image_measures"].contains("sink_mass"));

    r = krause_cli("train --resume " + ckpt + " --steps 8", dir_);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("finished at step 8"), std::string::npos) << r.out;
}

TEST_F(Cli, DeviceChoiceOfSamplingAndEvaluation) {
    ASSERT_EQ(krause_cli("init --preset mnist-tiny --out m.safetensors", dir_).code, 0);
    auto r = krause_cli("sample --checkpoint m.safetensors -n 2 --device cpu --out s.png", dir_);
    EXPECT_EQ(r.code, 0) << r.err;
    r = krause_cli("eval --checkpoint m.safetensors --data mnist:" + data_ +
                       " --limit 4 --device cpu --json",
                   dir_);
    EXPECT_EQ(r.code, 0) << r.err;
    if (!torch::cuda::is_available()) {
        // Asking for a GPU that is not there is a one-line error, not a silent CPU run.
        for (const std::string& cmd :
             {std::string("sample --checkpoint m.safetensors -n 2 --device cuda --out s.png"),
              "eval --checkpoint m.safetensors --data mnist:" + data_ + " --device cuda"}) {
            r = krause_cli(cmd, dir_);
            EXPECT_EQ(r.code, 1) << cmd;
            EXPECT_NE(r.err.find("no CUDA device is available"), std::string::npos) << r.err;
        }
    }
}

// The op benchmark at a window and top-K of the user's choosing, reported in its rows.
TEST_F(Cli, BenchTimesTheOpAtAChosenWindowAndTopK) {
    const auto r = krause_cli("bench --what op --preset mnist-tiny --attention krause,krause-ref "
                              "--device cpu --op-batch 1 --op-window 12 --op-top-k 5 "
                              "--repeats 1 --warmup 0 --json",
                              dir_);
    ASSERT_EQ(r.code, 0) << r.err;
    const auto rows = nlohmann::json::parse(r.out)["ops"];
    ASSERT_EQ(rows.size(), 2u) << r.out;
    for (const auto& row : rows) {
        EXPECT_EQ(row["W"], 12) << row;
        EXPECT_EQ(row["K"], 5) << row;
        EXPECT_GT(row["fwd_bwd_ms"].get<double>(), 0.0) << row;
    }
}

// Without --preset a GPU times the paper's presets and a CPU the small MNIST model, where the
// paper's shapes would take minutes a row.
TEST_F(Cli, BenchOnTheCpuTimesTheSmallModelByDefault) {
    const auto r = krause_cli("bench --what op --attention krause --device cpu --op-batch 1 "
                              "--repeats 1 --warmup 0 --json",
                              dir_);
    ASSERT_EQ(r.code, 0) << r.err;
    const auto rows = nlohmann::json::parse(r.out)["ops"];
    ASSERT_EQ(rows.size(), 1u) << r.out;
    EXPECT_EQ(rows.at(0)["preset"], "mnist-small") << r.out;
}

// The tables show what the run measured: an op-only run prints no model table and no sampling
// note; the CPU does not measure peak memory or the queued op time, so they are "-" or left out
// of the tables and absent from the JSON, as are the batches of parts not run; a shortened
// sampling run carries its note; columns no row can fill on a CPU (fp8 sampling, the GPU
// yardsticks' ratios) are left out.
TEST_F(Cli, BenchTablesShowOnlyWhatTheRunMeasured) {
    const auto npos = std::string::npos;
    const std::string op = "bench --what op --preset mnist-tiny --attention krause --device cpu "
                           "--op-batch 1 --repeats 1 --warmup 0";
    auto r = krause_cli(op, dir_);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("attention op"), npos) << r.out;
    EXPECT_EQ(r.out.find("train img/s"), npos) << r.out;
    EXPECT_EQ(r.out.find("extrapolated"), npos) << r.out;
    EXPECT_EQ(r.out.find("/sdpa"), npos) << r.out;
    EXPECT_EQ(r.out.find("queued"), npos) << r.out;
    r = krause_cli(op + " --json", dir_);
    ASSERT_EQ(r.code, 0) << r.err;
    const auto op_row = nlohmann::json::parse(r.out)["ops"].at(0);
    EXPECT_FALSE(op_row.contains("peak_gib")) << r.out;
    EXPECT_FALSE(op_row.contains("fwd_bwd_queued_ms")) << r.out;

    const std::string train = "bench --what train --preset mnist-tiny --attention krause "
                              "--device cpu --batch 1 --repeats 1 --warmup 0";
    r = krause_cli(train, dir_);
    ASSERT_EQ(r.code, 0) << r.err;
    std::istringstream lines(r.out);
    std::vector<std::string> fields;
    for (std::string line; std::getline(lines, line);) {
        if (line.rfind("mnist-tiny", 0) != 0) continue;
        std::istringstream words(line);
        for (std::string w; words >> w;) fields.push_back(w);
    }
    // preset, attention, batch, train img/s, peak GiB, MFU, fwd b, fwd img/s, smp b, sample
    ASSERT_EQ(fields.size(), 10u) << r.out;
    EXPECT_EQ(fields[2], "1") << r.out;
    EXPECT_EQ(fields[4], "-") << r.out;
    EXPECT_EQ(fields[6], "-") << r.out;
    EXPECT_EQ(fields[8], "-") << r.out;
    EXPECT_EQ(r.out.find("extrapolated"), npos) << r.out;
    r = krause_cli(train + " --json", dir_);
    ASSERT_EQ(r.code, 0) << r.err;
    const auto row = nlohmann::json::parse(r.out)["models"].at(0);
    EXPECT_GT(row["train_images_per_s"].get<double>(), 0.0) << row;
    EXPECT_FALSE(row.contains("train_peak_gib")) << row;

    r = krause_cli("bench --what sample --preset mnist-tiny --attention krause --device cpu "
                   "--sample-batch 1 --sample-tokens 3 --repeats 1 --warmup 0",
                   dir_);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("extrapolated"), npos) << r.out;
    EXPECT_NE(r.out.find("sample im/s"), npos) << r.out;
    EXPECT_EQ(r.out.find("fp8 im/s"), npos) << r.out;  // the default lists fp8: GPU only
}

// Sampling at several precisions: the first is the row's figure, each further one its own where
// it applies (fp8 rings need Krause on a GPU, so on the CPU the default's fp8 is not timed).
TEST_F(Cli, BenchSamplesAtEachListedPrecision) {
    const std::string base = "bench --what sample --preset mnist-tiny --attention krause "
                             "--device cpu --sample-batch 1 --sample-tokens 3 --repeats 1 "
                             "--warmup 0 --json";
    auto row = [&](const std::string& extra) {
        const auto r = krause_cli(base + extra, dir_);
        EXPECT_EQ(r.code, 0) << r.err;
        return nlohmann::json::parse(r.out)["models"].at(0);
    };
    const auto two = row(" --sample-precision fp32,bf16");
    EXPECT_EQ(two["sample_precision"], "fp32") << two;
    EXPECT_GT(two["sample_images_per_s"].get<double>(), 0.0) << two;
    EXPECT_GT(two["sample_bf16_images_per_s"].get<double>(), 0.0) << two;
    const auto plain = row("");
    EXPECT_EQ(plain["sample_precision"], "auto") << plain;
    EXPECT_GT(plain["sample_images_per_s"].get<double>(), 0.0) << plain;
    EXPECT_FALSE(plain.contains("sample_fp8_images_per_s")) << plain;
}

TEST_F(Cli, EveryCommandFailsWithOneClearLineOnBadInput) {
    std::ofstream(dir_ + "/garbage.safetensors") << "garbage";
    std::ofstream(dir_ + "/empty.safetensors");
    const std::vector<std::string> bad = {
        "init --preset imagenet --out x.safetensors",
        "init --out /nonexistent-dir/x.safetensors",
        "train --data mnist:/nonexistent --steps 2 --out run",
        "train --steps 0 --out run",
        "train --resume missing.safetensors",
        "eval --checkpoint missing.safetensors --data mnist:" + data_,
        "eval --checkpoint garbage.safetensors --data mnist:" + data_,
        "sample --checkpoint empty.safetensors",
        "sample --checkpoint garbage.safetensors -n 0",
        "complete --checkpoint garbage.safetensors --data mnist:" + data_,
        "inspect --checkpoint garbage.safetensors --pixel 3,3",
        "data fetch imagenet --dir d",
        "bench --attention flash --what op",
        "bench --tensor-cores maybe --what op",
        "bench --op-window -3 --what op",
        "bench --sample-precision auto,fp16 --what sample",
        "sample --device gpu",
        "sample --checkpoint '' -n 2",
        "eval --checkpoint '' --data mnist:" + data_,
        "data fetch mnist --dir ''",
        "train --data mnist:" + data_ + " --steps 2 --out garbage.safetensors",
        "eval --data mnist:" + data_ + " --device tpu",
        "no-such-command",
    };
    for (const auto& args : bad) {
        const auto r = krause_cli(args, dir_);
        EXPECT_NE(r.code, 0) << args;
        EXPECT_LT(r.code, 128) << args << ": crashed\n" << r.err;
        EXPECT_FALSE(r.err.empty()) << args;
        EXPECT_LE(std::count(r.err.begin(), r.err.end(), '\n'), 3) << args << ":\n" << r.err;
    }
    // A model exists from here on: the remaining errors are about the other arguments.
    ASSERT_EQ(krause_cli("init --preset mnist-tiny --out m.safetensors", dir_).code, 0);
    for (const std::string& args : std::vector<std::string>{
             "inspect --checkpoint m.safetensors --image mnist:" + data_ + ":0 --pixel 99,99",
          "inspect --checkpoint m.safetensors --image nothing.png --pixel 3,3",
          "inspect --checkpoint m.safetensors --image mnist:" + data_ + ":9999 --pixel 3,3",
          "complete --checkpoint m.safetensors --data mnist:" + data_ + " --rows 40",
          "sample --checkpoint m.safetensors --temperature 0"}) {
        const auto r = krause_cli(args, dir_);
        EXPECT_NE(r.code, 0) << args;
        EXPECT_LT(r.code, 128) << args << ": crashed\n" << r.err;
        EXPECT_NE(r.err.find("error"), std::string::npos) << args << ":\n" << r.err;
    }
}

// The messages a new user met first: each names the problem in words, in one line.
TEST_F(Cli, ErrorsNameTheProblemNotTheMechanism) {
    std::ofstream(dir_ + "/notes.txt") << "# some notes\nnot a model at all\n";
    auto r = krause_cli("sample --checkpoint notes.txt -n 1", dir_);
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.err.find("not a safetensors checkpoint"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("truncated"), std::string::npos) << r.err;

    r = krause_cli("train --preset mnist-tiny --data mnist:" + data_ + " --steps 1 --out /proc/x",
                   dir_);
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.err.find("/proc/x"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("filesystem error"), std::string::npos) << r.err;
    EXPECT_LE(std::count(r.err.begin(), r.err.end(), '\n'), 2) << r.err;

    ASSERT_EQ(krause_cli("init --preset mnist-tiny --out m.safetensors", dir_).code, 0);
    r = krause_cli("eval --checkpoint m.safetensors --data mnist:" + data_ + " --limit 8", dir_);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("images/s"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find(" 0.0 images/s"), std::string::npos) << r.err;
}

// `data use` given a data set's own folder remembers the folder above it, so that `--data mnist`
// finds the files; files under another folder name are refused with the way to use them.
TEST_F(Cli, DataUseTakesADataSetsFolderForTheFolderAboveIt) {
    namespace fs = std::filesystem;
    const std::string store = fs::weakly_canonical(dir_).string() + "/store";
    fs::create_directories(store + "/mnist");
    for (const auto& f : fs::directory_iterator(data_)) {
        fs::copy_file(f.path(), store + "/mnist/" + f.path().filename().string());
    }
    const test::IsolatedDataSearch isolated(dir_ + "/search");

    auto r = krause_cli("data use " + store + "/mnist", dir_);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("so the data folder is " + store), std::string::npos) << r.out;
    r = krause_cli("data where", dir_);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("mnist:         " + store + "/mnist"), std::string::npos) << r.out;

    r = krause_cli("data use " + data_, dir_);
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_NE(r.err.find("holds the mnist files itself"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("--data mnist:" + data_), std::string::npos) << r.err;
    r = krause_cli("data where", dir_);
    EXPECT_NE(r.out.find("mnist:         " + store + "/mnist"), std::string::npos)
        << "a refused folder must not replace the remembered one:\n"
        << r.out;
}

}  // namespace
}  // namespace krause
