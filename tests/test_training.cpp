// Trainer pieces: AdamW against LibTorch's, the schedule, data order, resume, NaN, real training.
#include "data/dataset.h"
#include "model/checkpoint.h"
#include "model/dynamics.h"
#include "test_util.h"
#include "training/data_order.h"
#include "training/engine.h"
#include "training/evaluate.h"
#include "training/optimizer.h"
#include "training/threads.h"
#include "training/trainer.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/nn/module.h>
#include <torch/optim/adamw.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

namespace krause {
namespace {

using test::fake_mnist_dir;
using test::TempDir;
using test::tiny_config;

// The real-data run: about two minutes on two cores. Measured: 1.317 bits/dim over T on the
// first 500 test images after 150 steps; the bound leaves a margin for thread-count rounding.
constexpr int64_t kRealRunImages = 4000;
constexpr int64_t kRealRunBatch = 16;
constexpr int64_t kRealRunSteps = 150;
constexpr double kRealRunBound = 1.5;

TEST(FlatAdamW, MatchesLibTorchAdamWStepForStep) {
    torch::manual_seed(1);
    PixelTransformer a(tiny_config(AttentionKind::Krause));
    PixelTransformer b(tiny_config(AttentionKind::Krause));
    {
        torch::NoGradGuard no_grad;
        const auto pa = model_tensors(a), pb = model_tensors(b);
        for (size_t i = 0; i < pa.size(); ++i) pb[i].second.copy_(pa[i].second);
    }
    std::vector<at::Tensor> params;
    for (auto& [n, p] : model_tensors(a)) params.push_back(p);
    FlatAdamW flat(params);
    torch::optim::AdamW reference(b->parameters(),
                                  torch::optim::AdamWOptions(2e-3).weight_decay(0.01));
    const int64_t T = a->config().seq_len();
    for (int step = 0; step < 4; ++step) {
        const auto x = at::randint(0, 256, {2, T}, at::kLong);
        flat.zero_grad();
        a->token_nll(x).mean().backward();
        flat.step(2e-3, 0.01);
        reference.zero_grad();
        b->token_nll(x).mean().backward();
        reference.step();
    }
    const auto pa = model_tensors(a), pb = model_tensors(b);
    for (size_t i = 0; i < pa.size(); ++i) {
        EXPECT_TRUE(at::allclose(pa[i].second, pb[i].second, 1e-5, 1e-6)) << pa[i].first;
    }
}

TEST(FlatAdamW, ClippingBoundsTheGlobalNorm) {
    std::vector<at::Tensor> params = {at::zeros({3}).requires_grad_(true),
                                      at::zeros({2, 2}).requires_grad_(true)};
    FlatAdamW opt(params);
    (params[0].sum() * 30 + params[1].sum() * 40).backward();
    const double before = opt.clip_grad_norm(1.0).item<double>();
    EXPECT_NEAR(before, std::sqrt(3 * 900.0 + 4 * 1600.0), 1e-3);
    EXPECT_NEAR(opt.flat_grad().norm().item<double>(), 1.0, 1e-4);
    EXPECT_NEAR(params[1].grad().norm().item<double>(), 80.0 / before, 1e-4);
}

TEST(Schedule, WarmsUpLinearlyThenFollowsACosineToTheFloor) {
    const int64_t total = 100;
    EXPECT_NEAR(lr_at(0, total, 1e-3, 1e-9, 0.05), 1e-3 / 5, 1e-12);
    EXPECT_NEAR(lr_at(4, total, 1e-3, 1e-9, 0.05), 1e-3, 1e-12);
    EXPECT_NEAR(lr_at(5, total, 1e-3, 1e-9, 0.05), 1e-3, 1e-12);
    EXPECT_NEAR(lr_at(5 + 95 / 2, total, 1e-3, 1e-9, 0.05), 0.5e-3, 2e-5);
    EXPECT_NEAR(lr_at(100, total, 1e-3, 1e-9, 0.05), 1e-9, 1e-12);
    for (int64_t s = 6; s < total; ++s) {
        EXPECT_LE(lr_at(s, total, 1e-3, 1e-9, 0.05), lr_at(s - 1, total, 1e-3, 1e-9, 0.05));
    }
}

TEST(DataOrder, EpochsArePermutationsAndShardsPartitionTheGlobalBatch) {
    const auto p0 = DataOrder::permutation(1000, 7, 0);
    auto sorted = p0;
    std::sort(sorted.begin(), sorted.end());
    for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(sorted[i], i);
    EXPECT_EQ(p0, DataOrder::permutation(1000, 7, 0));
    EXPECT_NE(p0, DataOrder::permutation(1000, 7, 1));
    EXPECT_NE(p0, DataOrder::permutation(1000, 8, 0));

    DataOrder whole(100, 3);
    std::multiset<int64_t> epoch;
    for (int64_t step = 0; step < 10; ++step) {
        for (int64_t i : whole.batch(step, 10)) epoch.insert(i);
    }
    EXPECT_EQ(epoch.size(), 100u);
    EXPECT_EQ(std::set<int64_t>(epoch.begin(), epoch.end()).size(), 100u);

    DataOrder r0(100, 3, 0, 2), r1(100, 3, 1, 2);
    DataOrder single(100, 3);
    for (int64_t step = 0; step < 7; ++step) {
        auto global = single.batch(step, 8);
        auto a = r0.batch(step, 4), b = r1.batch(step, 4);
        a.insert(a.end(), b.begin(), b.end());
        EXPECT_EQ(a, global) << "step " << step;
    }
}

// Reads metrics.jsonl and returns the training loss logged at `step`.
double logged_loss(const std::string& out_dir, int64_t step) {
    std::ifstream in(metrics_path(out_dir));
    std::string line;
    double found = std::nan("");
    while (std::getline(in, line)) {
        const auto j = nlohmann::json::parse(line);
        if (j.value("step", -1) == step && j.contains("loss")) found = j["loss"].get<double>();
    }
    return found;
}

TrainConfig tiny_run(const std::string& data_dir, const std::string& out, int64_t steps) {
    TrainConfig c;
    c.preset = "mnist-tiny";
    c.data = "mnist:" + data_dir;
    c.out_dir = out;
    c.batch_size = 4;
    c.steps = steps;
    c.eval_every = 0;
    c.eval_limit = 8;
    c.checkpoint_every = 0;
    c.log_every = 1;
    c.preview_count = 0;
    c.threads = 1;
    return c;
}

// Every logged line carries the mean gradient norm before clipping and the fraction of steps
// that were clipped.
TEST(Trainer, LogsTheGradientNormAndTheClippedFraction) {
    const auto data = fake_mnist_dir();
    for (double clip : {0.0, 1e-4}) {
        const TempDir out(clip > 0 ? "clipped" : "unclipped");
        auto config = tiny_run(data.path(), out.path(), 3);
        config.grad_clip = clip;
        auto job = start_training(config);
        job->wait();
        ASSERT_EQ(job->state(), JobState::Finished) << job->error();
        std::ifstream in(metrics_path(out.path()));
        std::string line;
        int logged = 0;
        while (std::getline(in, line)) {
            const auto j = nlohmann::json::parse(line);
            if (!j.contains("loss")) continue;
            ++logged;
            ASSERT_TRUE(j.contains("grad_norm") && j.contains("clipped")) << line;
            EXPECT_GT(j["grad_norm"].get<double>(), 1e-4) << line;
            EXPECT_EQ(j["clipped"].get<double>(), clip > 0 ? 1.0 : 0.0) << line;
        }
        EXPECT_EQ(logged, 3) << "clip " << clip;
    }
}

// Each evaluation records the token states' collapse measures of its first 8 test images: the
// final one equals token_dynamics on the saved model and the same images.
TEST(Trainer, EvaluationsRecordTheTokenStateMeasures) {
    const auto data = fake_mnist_dir();
    const TempDir out("state-measures");
    auto config = tiny_run(data.path(), out.path(), 4);
    config.eval_every = 2;
    auto job = start_training(config);
    job->wait();
    ASSERT_EQ(job->state(), JobState::Finished) << job->error();
    const auto last_snapshot = job->snapshot();
    ASSERT_TRUE(last_snapshot);
    const TrainSnapshot& snap = *last_snapshot;
    const size_t states = preset("mnist-tiny").n_layers + 1;
    ASSERT_EQ(snap.state_cosine.size(), snap.sink_mass.size());
    ASSERT_GE(snap.state_cosine.size(), 2u);
    for (const auto* rows :
         {&snap.state_cosine, &snap.state_consensus, &snap.state_rank, &snap.state_clusters}) {
        for (const auto& row : *rows) EXPECT_EQ(row.size(), states);
    }

    nlohmann::json last;
    std::ifstream in(metrics_path(out.path()));
    std::string line;
    while (std::getline(in, line)) {
        const auto j = nlohmann::json::parse(line);
        if (j.contains("state_cosine")) last = j;
    }
    ASSERT_FALSE(last.is_null()) << "no evaluation record carries the state measures";
    EXPECT_EQ(last["state_cluster_eps"].get<double>(), 0.5);

    auto ck =
        load_checkpoint((std::filesystem::path(out.path()) / "checkpoint.safetensors").string());
    const auto images =
        images_tensor(load_dataset(parse_dataset_spec("mnist:" + data.path()), Split::Test, 8));
    DynamicsOptions options;
    options.eps_fractions = {0.5};
    const auto expected = token_dynamics(ck.model, images, options);
    ASSERT_EQ(expected.states.size(), states);
    for (size_t l = 0; l < states; ++l) {
        SCOPED_TRACE("state " + std::to_string(l));
        const auto& m = expected.states[l];
        EXPECT_NEAR(last["state_cosine"][l].get<double>(), m.cosine, 1e-6);
        EXPECT_NEAR(last["state_consensus"][l].get<double>(), m.consensus, 1e-6);
        EXPECT_NEAR(last["state_effective_rank"][l].get<double>(), m.effective_rank,
                    1e-6 * m.effective_rank);
        EXPECT_EQ(last["state_clusters"][l].get<double>(), m.clusters.at(0));
        EXPECT_EQ(snap.state_cosine.back()[l], last["state_cosine"][l].get<double>());
    }
}

// Runs the trainer in the calling thread and asks it to stop once it has published step
// `stop_at`: the stop lands at that step on any machine, however fast or slow.
class StopAtStep final : public JobContext<TrainSnapshot> {
public:
    explicit StopAtStep(int64_t stop_at) : stop_at_(stop_at) {}
    void publish(TrainSnapshot snapshot) override {
        if (snapshot.step >= stop_at_) stop_ = true;
        last = std::move(snapshot);
    }
    bool stop_requested() const override { return stop_.load(); }
    const std::atomic<bool>& stop_flag() const override { return stop_; }
    bool wait_while_paused() override { return !stop_.load(); }
    TrainSnapshot last;

private:
    int64_t stop_at_;
    std::atomic<bool> stop_{false};
};

TEST(Trainer, ResumedRunReachesTheSameLossAsAnUninterruptedOne) {
    const auto data = fake_mnist_dir();
    const TempDir straight("straight");
    auto job = start_training(tiny_run(data.path(), straight.path(), 12));
    job->wait();
    ASSERT_EQ(job->state(), JobState::Finished) << job->error();

    const TempDir interrupted("interrupted");
    StopAtStep first(5);
    run_training(tiny_run(data.path(), interrupted.path(), 12), first);
    EXPECT_EQ(first.last.step, 5);
    EXPECT_EQ(first.last.status, "stopped at step 5");
    ASSERT_EQ(first.last.checkpoint, checkpoint_path(interrupted.path()));

    auto config = tiny_run(data.path(), interrupted.path(), 12);
    config.resume = checkpoint_path(interrupted.path());
    auto second = start_training(config);
    second->wait();
    ASSERT_EQ(second->state(), JobState::Finished) << second->error();
    const double a = logged_loss(straight.path(), 12), b = logged_loss(interrupted.path(), 12);
    ASSERT_FALSE(std::isnan(a));
    EXPECT_NEAR(a, b, 1e-6);
}

TEST(Trainer, NonFiniteLossStopsAndKeepsTheLastGoodCheckpoint) {
    const auto data = fake_mnist_dir();
    const TempDir out("nan");
    auto config = tiny_run(data.path(), out.path(), 20);
    config.checkpoint_every = 3;
    config.inject_nan_at = 7;  // the 8th step
    auto job = start_training(config);
    job->wait();
    ASSERT_EQ(job->state(), JobState::Failed);
    EXPECT_NE(job->error().find("non-finite training loss at step 8"), std::string::npos)
        << job->error();
    EXPECT_NE(job->error().find("step 6"), std::string::npos) << job->error();
    const auto ck = load_checkpoint(checkpoint_path(out.path()));
    EXPECT_EQ(ck.metadata.at(kMetaStep), "6");
    for (const auto& [name, t] : model_tensors(const_cast<PixelTransformer&>(ck.model))) {
        EXPECT_TRUE(t.isfinite().all().item<bool>()) << name;
    }
}

// --minutes: the steps are timed on a throwaway model, the run takes the steps that fit, its
// schedule ends at the last of them, and its checkpoint keeps that step count (not the budget),
// so a resumed run continues the same schedule.
TEST(Trainer, TimeBudgetSetsTheStepCountFromTimedSteps) {
    const auto data = fake_mnist_dir();
    const TempDir out("minutes");
    auto config = tiny_run(data.path(), out.path(), 1000000);  // overridden by the budget
    config.minutes = 0.02;
    auto job = start_training(config);
    job->wait();
    ASSERT_EQ(job->state(), JobState::Finished) << job->error();

    nlohmann::json budget, last;
    std::ifstream in(metrics_path(out.path()));
    std::string line;
    while (std::getline(in, line)) {
        const auto j = nlohmann::json::parse(line);
        if (j.value("event", "") == "steps from the time budget") budget = j;
        if (j.contains("lr")) last = j;
    }
    ASSERT_FALSE(budget.is_null()) << "no record of the timed steps";
    const int64_t steps = budget["steps"].get<int64_t>();
    const double per_step = budget["seconds_per_step"].get<double>();
    EXPECT_GE(budget["timed_steps"].get<int64_t>(), 1);
    EXPECT_EQ(budget["minutes"].get<double>(), 0.02);
    EXPECT_GT(per_step, 0);
    EXPECT_EQ(steps, std::max<int64_t>(1, static_cast<int64_t>(std::floor(1.2 / per_step))));
    ASSERT_EQ(last["step"].get<int64_t>(), steps);
    EXPECT_NEAR(last["lr"].get<double>(),
                lr_at(steps - 1, steps, config.lr, config.min_lr, config.warmup), 1e-15);

    const auto snap = job->snapshot();
    ASSERT_TRUE(snap);
    EXPECT_EQ(snap->status.rfind("finished at step " + std::to_string(steps), 0), 0u)
        << snap->status;
    EXPECT_NE(snap->schedule.find(std::to_string(steps) + " steps fit in 0.02 minutes"),
              std::string::npos)
        << snap->schedule;
    const auto ck = load_checkpoint(checkpoint_path(out.path()));
    EXPECT_EQ(ck.metadata.at(kMetaStep), std::to_string(steps));
    const auto stored = TrainConfig::from_json(ck.metadata.at(kMetaTrainConfig));
    EXPECT_EQ(stored.steps, steps);
    EXPECT_EQ(stored.minutes, 0);

    // The timing happens before the model is made and seeded: the run is the one --steps gives
    // (dropout masks included).
    const TempDir same("minutes-as-steps");
    auto job2 = start_training(tiny_run(data.path(), same.path(), steps));
    job2->wait();
    ASSERT_EQ(job2->state(), JobState::Finished) << job2->error();
    EXPECT_EQ(logged_loss(same.path(), steps), last["loss"].get<double>());
}

// The threads option reaches a pthreads OpenBLAS too, whose pool LibTorch's thread count leaves
// alone: LibTorch's workers beside a pool of the default size take the cores from each other.
TEST(Trainer, ThreadsOptionLimitsOpenBlasToo) {
    if (blas_threads() == 0) GTEST_SKIP() << "the BLAS behind LibTorch here is not OpenBLAS";
    set_compute_threads(2);
    ASSERT_EQ(blas_threads(), 2);
    const auto data = fake_mnist_dir();
    const TempDir out("threads");
    auto job = start_training(tiny_run(data.path(), out.path(), 1));  // threads = 1
    job->wait();
    ASSERT_EQ(job->state(), JobState::Finished) << job->error();
    EXPECT_EQ(blas_threads(), 1);
}

TEST(Trainer, BadDataAndBadOptionsFailWithAMessage) {
    const TempDir bad("bad");
    auto config = tiny_run("/nonexistent/folder", bad.path(), 5);
    auto job = start_training(config);
    job->wait();
    EXPECT_EQ(job->state(), JobState::Failed);
    EXPECT_NE(job->error().find("/nonexistent/folder"), std::string::npos) << job->error();

    config.batch_size = 0;
    EXPECT_THROW(start_training(config), std::invalid_argument);
    config.batch_size = 4;
    config.precision = "fp16";
    EXPECT_THROW(start_training(config), std::invalid_argument);
    config.precision = "fp32";
    EXPECT_EQ(TrainConfig::from_json(config.to_json()).precision, "fp32");
    config.minutes = -1;
    EXPECT_THROW(start_training(config), std::invalid_argument);
    config.minutes = 0;
    // Names and model options are checked before the worker starts, not after loading data.
    config.preset = "huge";
    EXPECT_THROW(start_training(config), std::invalid_argument);
    config.preset = "mnist-tiny";
    config.attention = "flash";
    EXPECT_THROW(start_training(config), std::invalid_argument);
    config.attention = "krause";
    config.window = 0;
    EXPECT_THROW(start_training(config), std::invalid_argument);
    config.window.reset();

    const auto data = fake_mnist_dir();
    const TempDir shape("shape");
    auto cifar_shape = tiny_run(data.path(), shape.path(), 5);
    cifar_shape.preset = "cifar10-small";
    auto mismatch = start_training(cifar_shape);
    mismatch->wait();
    EXPECT_EQ(mismatch->state(), JobState::Failed);
    EXPECT_NE(mismatch->error().find("preset"), std::string::npos) << mismatch->error();
}

TEST(Checkpoint, ReadersNeverSeeAHalfWrittenFile) {
    PixelTransformer model(tiny_config(AttentionKind::Krause));
    const TempDir dir("atomic");
    const auto path = dir / "model.safetensors";
    save_checkpoint(path, model);
    std::atomic<bool> done{false};
    std::atomic<int> reads{0}, failures{0};
    std::thread reader([&] {
        while (!done) {
            try {
                load_checkpoint(path);
                ++reads;
            } catch (const std::exception&) {
                ++failures;
            }
        }
    });
    for (int i = 0; i < 30; ++i) {
        save_checkpoint(path, model, {{"round", std::to_string(i)}},
                        {{"optim.pad", at::randn({20000})}});
    }
    done = true;
    reader.join();
    EXPECT_GT(reads.load(), 0);
    EXPECT_EQ(failures.load(), 0);
}

// A short real run: a few thousand real MNIST images, a few hundred steps on the CPU.
TEST(Trainer, RealMnistRunLearnsFarBelowUniform) {
    const auto data = test::data_dir();
    if (data.empty()) GTEST_SKIP() << "KRAUSE_DATA_DIR not set: real MNIST is not available";
    TrainConfig c;
    c.preset = "mnist-tiny";
    c.data = "mnist:" + data + "/mnist";
    const TempDir out("real-mnist");
    c.out_dir = out.path();
    c.train_limit = kRealRunImages;
    c.batch_size = kRealRunBatch;
    c.steps = kRealRunSteps;
    c.lr = 3e-3;
    c.dropout = 0.0;
    c.eval_every = 0;
    c.eval_limit = 500;
    c.checkpoint_every = 0;
    c.log_every = 50;
    c.preview_count = 0;
    auto job = start_training(c);
    job->wait();
    ASSERT_EQ(job->state(), JobState::Finished) << job->error();
    const auto snap = job->snapshot();
    ASSERT_EQ(snap->test_curve.size(), 1u);
    const double bpd = snap->test_curve.back().value;
    RecordProperty("test_bpd", std::to_string(bpd));
    std::printf("real MNIST run: %lld steps, test %.4f bits/dim over T (500 images), %.0f tok/s\n",
                static_cast<long long>(c.steps), bpd, snap->tokens_per_s);
    EXPECT_LT(bpd, kRealRunBound) << "a uniform model scores 8.0";
}

}  // namespace
}  // namespace krause
