// Crash safety of the krause command line: SIGKILL at random moments (checkpoint writes
// included) never leaves a checkpoint that fails to load or resume, a full disk keeps the previous
// checkpoint, a NaN loss stops with the step, and bad paths and wrong kinds of files give one
// clear line and a non-zero exit, never a crash or a hang.
#include "model/checkpoint.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <thread>

namespace krause {
namespace {

namespace fs = std::filesystem;

struct RunOptions {
    double kill_after_s = -1;        // SIGKILL after this many seconds (< 0: never)
    std::string kill_clock_file;     // when set, the kill clock starts once this file exists
    bool clock_on_own_temp = false;  // kill_clock_file += ".tmp.<pid of the run>"
    rlim_t file_size_limit = RLIM_INFINITY;
    double timeout_s = 240;  // a hang is a failure too
};

struct Outcome {
    int code = -1;  // exit status, or 128 + signal
    bool killed = false, timed_out = false;
    double clock_started_at = 0;  // seconds from start until kill_clock_file appeared
    std::string out, err;
};

using test::read_file;

std::vector<std::string> split_args(const std::string& args) {
    std::vector<std::string> out;
    std::istringstream in(args);
    std::string word;
    while (in >> word) out.push_back(word == "''" ? "" : word);
    return out;
}

// Runs the krause executable in dir (args split at spaces; '' is an empty argument). Safe to
// call from several threads at once: each run has its own output files, and the child process
// only makes system calls between fork and exec.
Outcome krause(const std::string& args, const std::string& dir, const RunOptions& opt = {}) {
    static std::atomic<int> runs{0};
    const std::string id = std::to_string(runs++);
    const std::string out = dir + "/stdout-" + id + ".txt", err = dir + "/stderr-" + id + ".txt";
    std::vector<std::string> words = split_args(args);
    words.insert(words.begin(), KRAUSE_CLI);
    std::vector<char*> argv;
    for (auto& w : words) argv.push_back(w.data());
    argv.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid == 0) {
        if (::chdir(dir.c_str()) != 0) ::_exit(125);
        const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int n = ::open("/dev/null", O_RDONLY);
        ::dup2(n, 0);
        ::dup2(o, 1);
        ::dup2(e, 2);
        if (opt.file_size_limit != RLIM_INFINITY) {
            // A full disk, as far as this process can tell: writes past the limit fail with
            // EFBIG instead of raising SIGXFSZ (an ignored signal stays ignored across exec).
            const rlimit lim{opt.file_size_limit, opt.file_size_limit};
            ::setrlimit(RLIMIT_FSIZE, &lim);
            ::signal(SIGXFSZ, SIG_IGN);
        }
        ::execv(KRAUSE_CLI, argv.data());
        ::_exit(127);
    }
    Outcome r;
    const auto start = std::chrono::steady_clock::now();
    auto since = [](std::chrono::steady_clock::time_point t0) {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    auto kill_clock = start;
    const std::string clock_file = opt.clock_on_own_temp
                                       ? opt.kill_clock_file + ".tmp." + std::to_string(pid)
                                       : opt.kill_clock_file;
    bool clock_started = clock_file.empty();
    int status = 0;
    for (;;) {
        const pid_t done = ::waitpid(pid, &status, WNOHANG);
        if (done == pid) break;
        const double t = since(start);
        if (!clock_started && fs::exists(clock_file)) {
            clock_started = true;
            kill_clock = std::chrono::steady_clock::now();
            r.clock_started_at = t;
        }
        if (!r.killed && clock_started && opt.kill_after_s >= 0 &&
            since(kill_clock) >= opt.kill_after_s) {
            ::kill(pid, SIGKILL);
            r.killed = true;
        }
        if (!r.killed && t >= opt.timeout_s) {
            ::kill(pid, SIGKILL);
            r.killed = r.timed_out = true;
        }
        std::this_thread::sleep_for(std::chrono::microseconds(clock_started ? 2000 : 500));
    }
    if (WIFEXITED(status)) r.code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) r.code = 128 + WTERMSIG(status);
    r.out = read_file(out);
    r.err = read_file(err);
    fs::remove(out);
    fs::remove(err);
    return r;
}

// The lines of stderr that are not progress lines (which commands print while they work).
std::vector<std::string> message_lines(const std::string& err) {
    static const char* const kProgress[] = {"loading ",    "training ",   "sampling ",
                                            "completing ", "evaluating ", "inspecting ",
                                            "bench ",      "step ",       "downloading "};
    std::vector<std::string> out;
    std::istringstream in(err);
    std::string line;
    while (std::getline(in, line, '\n')) {
        // A progress bar redraws itself with carriage returns: its last state counts.
        const size_t cr = line.find_last_of('\r');
        if (cr != std::string::npos) line.erase(0, cr + 1);
        bool progress = line.empty() || line.find(": downloading ") != std::string::npos;
        for (const char* p : kProgress) progress = progress || line.rfind(p, 0) == 0;
        if (!progress) out.push_back(line);
    }
    return out;
}

std::vector<std::string> temp_files(const std::string& dir) {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir)) {
        if (e.path().filename().string().find(".tmp.") != std::string::npos)
            out.push_back(e.path().string());
    }
    return out;
}

int64_t checkpoint_step(const std::string& path) {
    return std::stoll(load_checkpoint(path).metadata.at("step"));
}

const char* kTrainArgs =
    " --preset mnist-tiny --batch 4 --checkpoint-every 1 --log-every 1 --preview 0"
    " --eval-every 0 --eval-limit 2 --threads 1 --out run";

class CrashSafety : public ::testing::Test {
protected:
    // Checkpoints of a few MB per test: the folders go, unless a test failed and they tell why.
    void TearDown() override {
        if (!HasFailure()) return;
        tmp_.keep();
        data_tmp_.keep();
    }
    test::TempDir tmp_{"crash"};
    test::TempDir data_tmp_ = test::fake_mnist_dir(32, 8);
    const std::string dir_ = tmp_.path(), data_ = data_tmp_.path();
};

// SIGKILL at random moments of a run that checkpoints every step: after each kill the newest
// checkpoint loads, its step never goes back, and the next run resumes from it.
TEST_F(CrashSafety, KilledTrainingAlwaysLeavesALoadableCheckpointThatResumes) {
    const std::string ckpt = dir_ + "/run/checkpoint.safetensors";
    std::mt19937 rng(std::random_device{}());
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    double first_checkpoint_s = 0;  // start-up plus one step: the scale of the kill times
    int64_t last_step = 0;
    int kills = 0, writes_hit = 0;
    for (int i = 0; i < 10; ++i) {
        const bool resume = fs::exists(ckpt);
        const std::string args =
            resume ? "train --resume run/checkpoint.safetensors --out run"
                   : "train --data mnist:" + data_ + " --steps 100000" + kTrainArgs;
        const auto before = temp_files(dir_ + (resume ? "/run" : ""));
        RunOptions opt;
        if (resume && i % 2 == 0) {
            // Anywhere from start-up to a few steps in.
            opt.kill_after_s = 0.1 + unit(rng) * 2 * first_checkpoint_s;
        } else if (resume) {
            // Within a few milliseconds of this run starting to write its checkpoint.
            opt.kill_clock_file = ckpt;
            opt.clock_on_own_temp = true;
            opt.kill_after_s = unit(rng) * 0.005;
        } else {
            // The first run lives until its first checkpoint, so the others have one to resume.
            opt.kill_clock_file = ckpt;
            opt.kill_after_s = unit(rng) * 1.5;
        }
        const Outcome r = krause(args, dir_, opt);
        ASSERT_TRUE(r.killed) << "the run ended on its own: " << r.code << "\n" << r.err;
        ASSERT_FALSE(r.timed_out) << r.err;
        if (!resume) first_checkpoint_s = r.clock_started_at;
        ++kills;
        if (!fs::exists(ckpt)) continue;  // killed before the first checkpoint
        if (temp_files(dir_ + "/run").size() > before.size()) ++writes_hit;
        int64_t step = 0;
        ASSERT_NO_THROW(step = checkpoint_step(ckpt)) << "after kill " << kills;
        EXPECT_GE(step, last_step) << "after kill " << kills;
        last_step = step;
    }
    ASSERT_TRUE(fs::exists(ckpt)) << "no kill came after the first checkpoint";
    const Outcome done = krause("train --resume run/checkpoint.safetensors --out run --steps " +
                                    std::to_string(last_step + 2),
                                dir_);
    ASSERT_EQ(done.code, 0) << done.err;
    EXPECT_NE(done.out.find("finished at step " + std::to_string(last_step + 2)), std::string::npos)
        << done.out;
    EXPECT_EQ(checkpoint_step(ckpt), last_step + 2);
    EXPECT_TRUE(temp_files(dir_ + "/run").empty()) << "temp files of killed writes were left";
    std::printf("[ kills ] %d kills, %d during a checkpoint write, last step %lld\n", kills,
                writes_hit, static_cast<long long>(last_step));
}

// A write that runs out of space fails with a message naming the checkpoint, leaves the previous
// checkpoint byte for byte, and leaves no temporary file behind.
TEST_F(CrashSafety, FullDiskDuringACheckpointKeepsThePreviousOne) {
    const std::string ckpt = dir_ + "/run/checkpoint.safetensors";
    ASSERT_EQ(krause("train --data mnist:" + data_ + " --steps 2" + kTrainArgs, dir_).code, 0);
    const std::string before = read_file(ckpt);
    ASSERT_GT(before.size(), 1000u);
    RunOptions opt;
    opt.file_size_limit = before.size() / 2;
    const Outcome r =
        krause("train --resume run/checkpoint.safetensors --out run --steps 4", dir_, opt);
    EXPECT_NE(r.code, 0) << r.out;
    EXPECT_LT(r.code, 128) << r.err;
    EXPECT_NE(r.err.find("checkpoint.safetensors"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("File too large"), std::string::npos) << r.err;
    EXPECT_EQ(read_file(ckpt), before) << "the previous checkpoint changed";
    EXPECT_EQ(checkpoint_step(ckpt), 2);
    EXPECT_TRUE(temp_files(dir_ + "/run").empty());
}

// The CLI side of the NaN test hook: non-zero exit, the step named, the last good checkpoint kept.
TEST_F(CrashSafety, NonFiniteLossStopsTheCliNamingTheStepAndKeepsTheLastCheckpoint) {
    const Outcome r = krause("train --data mnist:" + data_ +
                                 " --steps 20 --checkpoint-every 3 --inject-nan-at 7 --batch 4"
                                 " --preset mnist-tiny --log-every 5 --preview 0 --eval-every 0"
                                 " --threads 1 --out run",
                             dir_);
    EXPECT_NE(r.code, 0);
    EXPECT_LT(r.code, 128) << r.err;
    EXPECT_NE(r.err.find("non-finite training loss at step 8"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("checkpoint.safetensors (step 6)"), std::string::npos) << r.err;
    EXPECT_EQ(checkpoint_step(dir_ + "/run/checkpoint.safetensors"), 6);
}

// A few hundred bytes whose config asks for a model of terabytes are refused before the model is
// built (found by tests/fuzz/fuzz_checkpoint).
TEST_F(CrashSafety, TinyCheckpointWithAHugeConfigIsRefusedBeforeBuildingTheModel) {
    ModelConfig small = test::tiny_config(AttentionKind::Linear, 2, 2);
    PixelTransformer model(small);
    ModelConfig huge = small;
    huge.d_model = 16384;
    huge.n_heads = 1;
    huge.n_layers = 256;
    const std::string path = dir_ + "/huge.safetensors";
    write_safetensors(path, model_tensors(model),
                      {{kMetaFormat, kCheckpointFormat},
                       {kMetaVersion, std::to_string(kCheckpointVersion)},
                       {kMetaModelConfig, huge.to_json()}});
    try {
        load_checkpoint(path);
        FAIL() << "loaded";
    } catch (const CheckpointError& e) {
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("parameters"), std::string::npos) << e.what();
    }
}

// Runs every command line of cases, two at a time (each is mostly LibTorch's start-up).
std::vector<Outcome> run_all(const std::vector<std::string>& cases, const std::string& dir) {
    std::vector<Outcome> outcomes(cases.size());
    std::atomic<size_t> next{0};
    auto worker = [&] {
        for (size_t i = next++; i < cases.size(); i = next++) {
            RunOptions opt;
            opt.timeout_s = 120;
            outcomes[i] = krause(cases[i], dir, opt);
        }
    };
    std::thread other(worker);
    worker();
    other.join();
    return outcomes;
}

// Every command, given a missing, unreadable, wrong-kind (a directory, a FIFO, another kind of
// file) or empty input, prints one clear line (and perhaps a hint) and exits non-zero without a
// crash (exit < 128), a core dump or a hang. "Unreadable" is /proc/self/mem: a regular file
// whose reads fail with EIO even for root, who can read any file whatever its permission bits.
// A FIFO has no writer, so opening it for reading would block forever.
TEST_F(CrashSafety, EveryCommandRejectsBadPathsAndWrongKindsOfFilesWithOneLine) {
    const std::string d = dir_;
    ASSERT_EQ(krause("init --preset mnist-tiny --out model.safetensors", d).code, 0);
    ASSERT_EQ(krause("sample --checkpoint model.safetensors -n 1 --out image.png", d).code, 0);
    fs::create_directories(d + "/folder.safetensors");
    fs::create_directories(d + "/folder.png");
    fs::create_directories(d + "/empty-data");
    for (const char* f : {"fifo.safetensors", "fifo.png"}) {
        ASSERT_EQ(::mkfifo((d + "/" + f).c_str(), 0644), 0);
    }
    fs::create_symlink("/proc/self/mem", d + "/mem.safetensors");
    fs::create_symlink("/proc/self/mem", d + "/mem.png");
    std::ofstream(d + "/empty.safetensors").flush();
    std::ofstream(d + "/empty.png").flush();
    std::ofstream(d + "/a-file") << "x";
    {
        // A PNG of the model's shape whose IDAT chunk claims 2 GB: refused before decoding (the
        // decoder would allocate the claimed size first).
        const unsigned char kHead[] = {
            0x89, 'P', 'N', 'G',  '\r', '\n', 0x1a, '\n', 0,   0,   0,   13,   'I',  'H', 'D',
            'R',  0,   0,   0,    28,   0,    0,    0,    28,  8,   0,   0,    0,    0,   0,
            0,    0,   0,   0x7f, 0xff, 0xff, 0xff, 'I',  'D', 'A', 'T', 0x78, 0x9c, 0,   0};
        std::ofstream(d + "/huge-idat.png", std::ios::binary)
            .write(reinterpret_cast<const char*>(kHead), sizeof kHead);
    }
    // Data folders whose four IDX files are empty, checkpoints, FIFOs, or unreadable.
    const char* const kIdx[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    // Their gzipped names too: the mirrors `data fetch --base-url file://...` is given.
    for (const char* kind : {"empty-idx", "ckpt-data", "fifo-data", "mem-data"}) {
        fs::create_directories(d + "/" + kind);
    }
    fs::create_directories(d + "/dir-mirror");
    for (const std::string f : kIdx) {
        for (const std::string name : {f, f + ".gz"}) {
            std::ofstream(d + "/empty-idx/" + name).flush();
            fs::copy_file(d + "/model.safetensors", d + "/ckpt-data/" + name);
            ASSERT_EQ(::mkfifo((d + "/fifo-data/" + name).c_str(), 0644), 0);
            fs::create_symlink("/proc/self/mem", d + "/mem-data/" + name);
        }
        fs::create_directories(d + "/dir-mirror/" + f + ".gz");
    }
    const std::string data = " --data mnist:" + data_;
    const std::string train = "train --preset mnist-tiny --steps 2 --batch 4 --preview 0";
    // The checkpoint inputs every command that reads one is given.
    const std::vector<std::string> bad_checkpoints = {"missing.safetensors", "folder.safetensors",
                                                      "fifo.safetensors",    "mem.safetensors",
                                                      "empty.safetensors",   "image.png"};
    // The data folders every command that reads a data set is given.
    const std::vector<std::string> bad_data = {"mnist:missing",   "mnist:a-file",
                                               "mnist:empty-idx", "mnist:ckpt-data",
                                               "mnist:fifo-data", "mnist:mem-data"};
    std::vector<std::string> bad = {
        "init --preset mnist-tiny --out folder.safetensors",
        "init --preset mnist-tiny --out a-file/x.safetensors",
        "init --preset mnist-tiny --out missing/x.safetensors",
        "init --preset mnist-tiny --out ''",
        "init --preset '' --out x.safetensors",
        train + " --data '' --out run",
        train + " --data mnist:empty-data --out run",
        train + " --data cifar10:" + data_ + " --out run",
        train + data + " --out a-file",
        train + data + " --out ''",
        "export --checkpoint model.safetensors --out folder.safetensors",
        "export --checkpoint model.safetensors --out a-file/x.safetensors",
        "export --checkpoint model.safetensors --out ''",
        "sample --checkpoint model.safetensors -n 1 --out folder.png",
        "sample --checkpoint model.safetensors -n 1 --out a-file/x.png",
        "sample --checkpoint model.safetensors -n 1 --out ''",
        "complete --checkpoint model.safetensors" + data + " --index 999999",
        "complete --checkpoint model.safetensors" + data + " -n 1 --rows 2 --out folder.png",
        "inspect --checkpoint model.safetensors --image image.png --pixel ''",
        "inspect --checkpoint model.safetensors --image '' --pixel 3,3",
        "data fetch mnist --dir a-file --base-url file://" + d + "/empty-idx",
        "data fetch mnist --dir fetched --base-url file://" + d + "/missing",
        "data fetch mnist --dir fetched --base-url file://" + d + "/empty-data",
        "data fetch mnist --dir fetched --base-url file://" + d + "/empty-idx",
        "data fetch mnist --dir fetched --base-url file://" + d + "/ckpt-data",
        "data fetch mnist --dir fetched --base-url file://" + d + "/fifo-data",
        "data fetch mnist --dir fetched --base-url file://" + d + "/mem-data",
        "data fetch mnist --dir fetched --base-url file://" + d + "/dir-mirror",
        "data fetch '' --dir fetched",
        "bench --preset nothing --what op --repeats 1 --warmup 0",
        "bench --what nothing --repeats 1 --warmup 0",
        "bench --device tpu --what op --repeats 1 --warmup 0",
        "bench --preset mnist-tiny --what op --repeats 0 --warmup 0",
    };
    for (const auto& c : bad_checkpoints) {
        bad.push_back(train + data + " --out run --resume " + c);
        bad.push_back("eval --checkpoint " + c + data);
        bad.push_back("export --checkpoint " + c + " --out exported.safetensors");
        bad.push_back("sample --checkpoint " + c + " -n 1");
        bad.push_back("complete --checkpoint " + c + data + " -n 1 --rows 2");
        bad.push_back("inspect --checkpoint " + c + " --image image.png --pixel 3,3");
    }
    for (const auto& spec : bad_data) {
        bad.push_back(train + " --data " + spec + " --out run");
        bad.push_back("eval --checkpoint model.safetensors --data " + spec);
        bad.push_back("complete --checkpoint model.safetensors --data " + spec + " -n 1 --rows 2");
        bad.push_back("inspect --checkpoint model.safetensors --image " + spec + ":0 --pixel 3,3");
    }
    for (const char* image : {"missing.png", "folder.png", "fifo.png", "mem.png", "empty.png",
                              "model.safetensors", "huge-idat.png"}) {
        bad.push_back("inspect --checkpoint model.safetensors --image " + std::string(image) +
                      " --pixel 3,3");
    }
    const auto outcomes = run_all(bad, d);
    for (size_t i = 0; i < bad.size(); ++i) {
        const Outcome& r = outcomes[i];
        const std::string what = bad[i] + "\nstderr:\n" + r.err;
        EXPECT_FALSE(r.timed_out) << "hung: " << what;
        EXPECT_NE(r.code, 0) << what;
        EXPECT_LT(r.code, 128) << "crashed: " << what;
        const auto lines = message_lines(r.err);
        EXPECT_GE(lines.size(), 1u) << "no message: " << what;
        EXPECT_LE(lines.size(), 2u) << "not one line (and a hint): " << what;
        if (!lines.empty()) {
            EXPECT_EQ(lines[0].rfind("krause: error: ", 0), 0u) << what;
            EXPECT_GT(lines[0].size(), std::string("krause: error: ").size() + 8) << what;
        }
        if (lines.size() == 2) EXPECT_EQ(lines[1].rfind("hint: ", 0), 0u) << what;
        for (const char* sign : {"terminate called", "what():", "Exception raised from",
                                 "Segmentation", "Aborted", "core dumped", "frame #"}) {
            EXPECT_EQ(r.err.find(sign), std::string::npos) << sign << " in " << what;
        }
    }
    EXPECT_NE(outcomes.back().err.find("huge-idat.png: damaged PNG (chunk IDAT claims"),
              std::string::npos)
        << outcomes.back().err;
    std::printf("[ paths ] %zu bad command lines, each one line and a clean non-zero exit\n",
                bad.size());
    EXPECT_FALSE(fs::exists(d + "/core")) << "a core dump was written";
    EXPECT_FALSE(fs::exists(d + "/fetched/train-images-idx3-ubyte.gz"));
}

}  // namespace
}  // namespace krause
