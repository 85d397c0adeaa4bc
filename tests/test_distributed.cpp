// Data-parallel training: the launcher's environment, sharding of batches and test sets, the
// collectives over Gloo (two ranks in one process), and `krause train` run as two processes
// against one process with the same global batch.
#include "test_util.h"
#include "training/data_order.h"
#include "training/distributed.h"

#include "model/safetensors.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

namespace krause {
namespace {

using Vars = std::map<std::string, std::string>;

DistributedEnv env_of(const Vars& vars) {
    return distributed_env_from([&](const char* name) -> std::optional<std::string> {
        const auto it = vars.find(name);
        if (it == vars.end()) return std::nullopt;
        return it->second;
    });
}

TEST(DistributedEnv, NoLauncherMeansOneProcess) {
    const auto env = env_of({});
    EXPECT_FALSE(env.launched());
    EXPECT_EQ(env.world_size, 1);
    EXPECT_EQ(env.rank, 0);
    EXPECT_FALSE(env_of({{"WORLD_SIZE", "1"}, {"RANK", "0"}}).launched());
}

TEST(DistributedEnv, ReadsTorchrunVariables) {
    const auto env = env_of({{"WORLD_SIZE", "8"},
                             {"RANK", "5"},
                             {"LOCAL_RANK", "1"},
                             {"MASTER_ADDR", "node0"},
                             {"MASTER_PORT", "29511"},
                             {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                             {"TORCHELASTIC_RESTART_COUNT", "2"},
                             {"KRAUSE_DIST_TIMEOUT", "30"}});
    EXPECT_TRUE(env.launched());
    EXPECT_EQ(env.world_size, 8);
    EXPECT_EQ(env.rank, 5);
    EXPECT_EQ(env.local_rank, 1);
    EXPECT_EQ(env.master_addr, "node0");
    EXPECT_EQ(env.master_port, 29511);
    EXPECT_TRUE(env.agent_store);
    EXPECT_EQ(env.restart_count, 2);
    EXPECT_EQ(env.timeout, std::chrono::seconds(30));
}

TEST(DistributedEnv, RejectsBadValuesNamingTheVariable) {
    const Vars good = {
        {"WORLD_SIZE", "2"}, {"RANK", "1"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1234"}};
    EXPECT_NO_THROW(env_of(good));
    auto with = [&](const std::string& key, const std::string& value) {
        Vars v = good;
        if (value.empty())
            v.erase(key);
        else
            v[key] = value;
        return v;
    };
    auto message = [](const Vars& v) {
        try {
            env_of(v);
        } catch (const std::invalid_argument& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    EXPECT_NE(message(with("RANK", "2")).find("RANK"), std::string::npos);  // rank >= world
    EXPECT_NE(message(with("RANK", "-1")).find("RANK"), std::string::npos);
    EXPECT_NE(message(with("RANK", "")).find("RANK is not set"), std::string::npos);
    EXPECT_NE(message(with("WORLD_SIZE", "two")).find("WORLD_SIZE"), std::string::npos);
    EXPECT_NE(message(with("MASTER_PORT", "70000")).find("MASTER_PORT"), std::string::npos);
    EXPECT_NE(message(with("MASTER_PORT", "12x")).find("MASTER_PORT"), std::string::npos);
    EXPECT_NE(message(with("MASTER_ADDR", "")).find("MASTER_ADDR"), std::string::npos);
}

TEST(DistributedShards, TestSetSlicesCoverEveryImageOnce) {
    for (int64_t n : {0, 1, 7, 10000}) {
        for (int world : {1, 2, 3, 4, 8}) {
            int64_t next = 0;
            for (int r = 0; r < world; ++r) {
                const auto [begin, end] = shard_range(n, r, world);
                EXPECT_EQ(begin, next);
                EXPECT_GE(end, begin);
                EXPECT_LE(end - begin, n / world + 1);
                next = end;
            }
            EXPECT_EQ(next, n) << n << " images over " << world;
        }
    }
    EXPECT_THROW(shard_range(10, 2, 2), std::invalid_argument);
}

TEST(DistributedShards, RankBatchesMakeUpTheGlobalBatch) {
    // 100 images, global batch 12: steps 7..9 cross the first epoch boundary.
    const int64_t n = 100, global = 12;
    for (int world : {2, 3, 4}) {
        DataOrder whole(n, 3407);
        std::vector<DataOrder> ranks;
        for (int r = 0; r < world; ++r) ranks.emplace_back(n, 3407, r, world);
        for (int64_t step : {0, 1, 7, 8, 9, 25}) {
            std::vector<int64_t> joined;
            for (auto& order : ranks) {
                const auto part = order.batch(step, global / world);
                joined.insert(joined.end(), part.begin(), part.end());
            }
            EXPECT_EQ(joined, whole.batch(step, global)) << "world " << world << " step " << step;
            EXPECT_EQ(std::set<int64_t>(joined.begin(), joined.end()).size(), joined.size());
        }
    }
}

int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        ::close(fd);
        return 29500;
    }
    const int port = ntohs(addr.sin_port);
    ::close(fd);
    return port;
}

DistributedEnv rank_env(int rank, int world, int port) {
    DistributedEnv env;
    env.rank = rank;
    env.local_rank = rank;
    env.world_size = world;
    env.master_port = port;
    env.timeout = std::chrono::seconds(60);
    return env;
}

TEST(DistributedGloo, CollectivesOverTwoRanks) {
    if (!distributed_supported(at::kCPU)) {
        GTEST_SKIP() << "this LibTorch build has no Gloo process group (libgloo-dev missing)";
    }
    const int port = free_port();
    std::vector<at::Tensor> sums(2), maxes(2), casts(2);
    std::vector<bool> any_true(2), any_false(2);
    std::vector<std::string> errors(2);
    auto body = [&](int rank) {
        try {
            auto comm = Communicator::connect(rank_env(rank, 2, port), at::Device(at::kCPU));
            EXPECT_EQ(comm->rank(), rank);
            sums[rank] = at::arange(5, at::kFloat) * (rank + 1);  // 0..4 and 0..8
            comm->all_reduce_sum(sums[rank]);
            maxes[rank] = at::tensor({rank == 0 ? 3.0 : -1.0, rank == 0 ? -2.0 : 7.0}, at::kDouble);
            comm->all_reduce_max(maxes[rank]);
            casts[rank] = rank == 0 ? at::full({3}, 42, at::kLong) : at::zeros({3}, at::kLong);
            comm->broadcast(casts[rank], 0);
            any_true[rank] = comm->any(rank == 1, at::Device(at::kCPU));
            any_false[rank] = comm->any(false, at::Device(at::kCPU));
        } catch (const std::exception& e) {
            errors[rank] = e.what();
        }
    };
    std::thread other(body, 1);
    body(0);
    other.join();
    ASSERT_EQ(errors[0], "");
    ASSERT_EQ(errors[1], "");
    for (int r = 0; r < 2; ++r) {
        EXPECT_TRUE(sums[r].equal(at::arange(5, at::kFloat) * 3));
        EXPECT_TRUE(maxes[r].equal(at::tensor({3.0, 7.0}, at::kDouble)));
        EXPECT_TRUE(casts[r].equal(at::full({3}, 42, at::kLong)));
        EXPECT_TRUE(any_true[r]);
        EXPECT_FALSE(any_false[r]);
    }
}

// `krause train` as separate processes, the way torchrun starts them.
struct Proc {
    pid_t pid = -1;
    std::string out, err;
};

Proc spawn_cli(const std::string& args, const std::string& dir, const std::string& tag,
               const Vars& vars) {
    Proc p;
    p.out = dir + "/" + tag + ".out";
    p.err = dir + "/" + tag + ".err";
    const std::string cmd = "cd '" + dir + "' && exec '" KRAUSE_CLI "' " + args + " >'" + p.out +
                            "' 2>'" + p.err + "' </dev/null";
    p.pid = ::fork();
    if (p.pid == 0) {
        for (const auto& [k, v] : vars) ::setenv(k.c_str(), v.c_str(), 1);
        ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    return p;
}

int wait_for(const Proc& p) {
    int status = 0;
    ::waitpid(p.pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

using test::read_file;

// step -> training loss, and the last test BPD, from a run's metrics.jsonl.
struct Metrics {
    std::map<int64_t, double> loss;
    double test_bpd = -1;
};
Metrics read_metrics(const std::string& path) {
    Metrics m;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        const auto j = nlohmann::json::parse(line);
        if (j.contains("loss")) m.loss[j["step"].get<int64_t>()] = j["loss"].get<double>();
        if (j.contains("test_bpd")) m.test_bpd = j["test_bpd"].get<double>();
    }
    return m;
}

Vars launch_vars(int rank, int world, int port) {
    return {{"WORLD_SIZE", std::to_string(world)}, {"RANK", std::to_string(rank)},
            {"LOCAL_RANK", std::to_string(rank)},  {"MASTER_ADDR", "127.0.0.1"},
            {"MASTER_PORT", std::to_string(port)}, {"KRAUSE_DIST_TIMEOUT", "120"}};
}

class DistributedTrain : public ::testing::Test {
protected:
    void SetUp() override {
        if (!distributed_supported(at::kCPU)) {
            GTEST_SKIP() << "this LibTorch build has no Gloo process group (libgloo-dev missing)";
        }
    }
    std::string args(const std::string& out, int64_t steps) const {
        // No dropout: the two set-ups then compute the same function of the same batches.
        return "train --preset mnist-tiny --data mnist:" + data_ + " --steps " +
               std::to_string(steps) +
               " --batch 8 --dropout 0 --lr 3e-3 --log-every 1"
               " --eval-every 0 --eval-limit 0 --preview 0 --threads 1 --device cpu --out " +
               out;
    }
    const test::TempDir tmp_{"ddp"};
    const test::TempDir data_tmp_ = test::fake_mnist_dir(64, 15);
    const std::string dir_ = tmp_.path(), data_ = data_tmp_.path();
};

TEST_F(DistributedTrain, TwoProcessesMatchOneWithTheSameGlobalBatch) {
    const auto single = spawn_cli(args("single", 5), dir_, "single", {});
    ASSERT_EQ(wait_for(single), 0) << read_file(single.err);

    const int port = free_port();
    const auto r1 = spawn_cli(args("pair", 5), dir_, "rank1", launch_vars(1, 2, port));
    const auto r0 = spawn_cli(args("pair", 5), dir_, "rank0", launch_vars(0, 2, port));
    ASSERT_EQ(wait_for(r0), 0) << read_file(r0.err);
    ASSERT_EQ(wait_for(r1), 0) << read_file(r1.err);
    EXPECT_NE(read_file(r0.out).find("finished at step 5"), std::string::npos) << read_file(r0.out);
    EXPECT_EQ(read_file(r1.out), "");  // only the first process reports

    const auto a = read_metrics(dir_ + "/single/metrics.jsonl");
    const auto b = read_metrics(dir_ + "/pair/metrics.jsonl");
    ASSERT_EQ(a.loss.size(), 5u);
    ASSERT_EQ(b.loss.size(), 5u);
    for (const auto& [step, loss] : a.loss) {
        EXPECT_NEAR(b.loss.at(step), loss, 1e-4 * std::abs(loss)) << "step " << step;
    }
    // The test set (15 images: 8 + 7 over the two ranks) is evaluated exactly once.
    EXPECT_NEAR(b.test_bpd, a.test_bpd, 1e-5 * a.test_bpd);
    const auto wa = read_safetensors(dir_ + "/single/checkpoint.safetensors");
    const auto wb = read_safetensors(dir_ + "/pair/checkpoint.safetensors");
    ASSERT_EQ(wa.tensors.size(), wb.tensors.size());
    for (size_t i = 0; i < wa.tensors.size(); ++i) {
        const auto& [name, t] = wa.tensors[i];
        ASSERT_EQ(name, wb.tensors[i].first);
        if (name.rfind("train.", 0) == 0) continue;  // generator states differ by design
        EXPECT_LT(test::max_abs_diff(t, wb.tensors[i].second), 1e-4) << name;
    }

    // The two-process checkpoint resumes in one process, like the one-process checkpoint.
    const auto ra = spawn_cli("train --resume single/checkpoint.safetensors --steps 7", dir_,
                              "resume-single", {});
    ASSERT_EQ(wait_for(ra), 0) << read_file(ra.err);
    const auto rb =
        spawn_cli("train --resume pair/checkpoint.safetensors --steps 7", dir_, "resume-pair", {});
    ASSERT_EQ(wait_for(rb), 0) << read_file(rb.err);
    const auto ca = read_metrics(dir_ + "/single/metrics.jsonl");
    const auto cb = read_metrics(dir_ + "/pair/metrics.jsonl");
    for (int64_t step : {6, 7}) {
        ASSERT_TRUE(ca.loss.count(step) && cb.loss.count(step)) << "step " << step;
        EXPECT_NEAR(cb.loss.at(step), ca.loss.at(step), 1e-4 * ca.loss.at(step));
    }
}

// With a time budget every process times its own steps; they stop timing together and take the
// slowest process's time, so all of them run the same steps (a disagreement would leave one
// waiting in a collective the others never reach).
TEST_F(DistributedTrain, TimeBudgetGivesEveryProcessTheSameSteps) {
    const int port = free_port();
    const std::string budget = args("budget", 1000000) + " --minutes 0.02";
    const auto r1 = spawn_cli(budget, dir_, "rank1", launch_vars(1, 2, port));
    const auto r0 = spawn_cli(budget, dir_, "rank0", launch_vars(0, 2, port));
    ASSERT_EQ(wait_for(r0), 0) << read_file(r0.err);
    ASSERT_EQ(wait_for(r1), 0) << read_file(r1.err);
    int64_t steps = -1;
    std::ifstream in(dir_ + "/budget/metrics.jsonl");
    std::string line;
    while (std::getline(in, line)) {
        const auto j = nlohmann::json::parse(line);
        if (j.value("event", "") == "steps from the time budget") steps = j["steps"].get<int64_t>();
    }
    ASSERT_GE(steps, 1) << "no record of the timed steps";
    const auto err = read_file(r0.err), out = read_file(r0.out);
    EXPECT_NE(err.find(std::to_string(steps) + " steps fit in 0.02 minutes"), std::string::npos)
        << err;
    EXPECT_NE(out.find("finished at step " + std::to_string(steps)), std::string::npos) << out;
    EXPECT_EQ(read_metrics(dir_ + "/budget/metrics.jsonl").loss.size(),
              static_cast<size_t>(steps));
}

TEST_F(DistributedTrain, AFailedRankStopsTheOthersWithAMessage) {
    const int port = free_port();
    auto vars0 = launch_vars(0, 2, port), vars1 = launch_vars(1, 2, port);
    vars0["KRAUSE_DIST_TIMEOUT"] = vars1["KRAUSE_DIST_TIMEOUT"] = "5";
    const auto start = std::chrono::steady_clock::now();
    const auto r0 = spawn_cli(args("pair", 4), dir_, "rank0", vars0);
    // Rank 1 is pointed at a data folder that does not exist.
    const auto r1 = spawn_cli("train --preset mnist-tiny --data mnist:" + dir_ + "/missing" +
                                  " --steps 4 --batch 8 --threads 1 --device cpu --out pair",
                              dir_, "rank1", vars1);
    EXPECT_NE(wait_for(r1), 0);
    EXPECT_NE(wait_for(r0), 0);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_LT(seconds, 90.0) << "rank 0 should give up after the 5 s timeout";
    EXPECT_NE(read_file(r1.err).find("krause[rank 1]: error:"), std::string::npos) << read_file(r1.err);
    const auto err0 = read_file(r0.err);
    EXPECT_NE(err0.find("krause[rank 0]: error:"), std::string::npos) << err0;
    EXPECT_EQ(err0.find("frame #"), std::string::npos) << "no backtrace: " << err0;
    const auto line = err0.substr(err0.find("krause[rank 0]: error:"));
    EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1) << err0;
}

TEST_F(DistributedTrain, GlobalBatchMustSplitEvenly) {
    const int port = free_port();
    auto p = spawn_cli("train --preset mnist-tiny --data mnist:" + data_ +
                           " --steps 2 --batch 7 --threads 1 --device cpu --out odd",
                       dir_, "odd", launch_vars(0, 2, port));
    EXPECT_EQ(wait_for(p), 1);
    EXPECT_NE(read_file(p.err).find("--batch 7 is not a multiple of the 2 processes"),
              std::string::npos)
        << read_file(p.err);
}

}  // namespace
}  // namespace krause
