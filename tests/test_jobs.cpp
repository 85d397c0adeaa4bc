// The job and snapshot plumbing the CLI and the studio share: stop, pause, errors, snapshots.
#include "model/checkpoint.h"
#include "test_util.h"
#include "training/engine.h"
#include "training/job.h"

#include <gtest/gtest.h>
#include <torch/utils.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace krause {
namespace {

using namespace std::chrono_literals;
using test::TempDir;
using test::tiny_config;

TEST(Job, ErrorsInTheBodyEndTheJobAsFailedWithTheMessage) {
    Job<int> job([](JobContext<int>& ctx) {
        ctx.publish(1);
        throw std::runtime_error("the data folder is empty");
    });
    job.wait();
    EXPECT_EQ(job.state(), JobState::Failed);
    EXPECT_EQ(job.error(), "the data folder is empty");
    EXPECT_EQ(*job.snapshot(), 1);
}

// The body reports each loop and then waits for the test's permit, so the test moves in step with
// it through condition variables: no sleep decides the outcome, however slow the machine.
TEST(Job, StopAndPauseAreSeenByTheBody) {
    std::mutex m;
    std::condition_variable cv;
    int loops = 0, permits = 0;
    bool paused_on_return = false;
    Job<int>* self = nullptr;
    Job<int> job([&](JobContext<int>& ctx) {
        {
            std::unique_lock<std::mutex> lock(m);
            cv.wait(lock, [&] { return self != nullptr; });
        }
        // The bound ends a body whose stop is never seen, so that failure fails instead of hangs.
        while (loops < 100 && ctx.wait_while_paused()) {
            const bool paused = self->paused();
            std::unique_lock<std::mutex> lock(m);
            paused_on_return = paused_on_return || paused;
            ctx.publish(++loops);
            cv.notify_all();
            cv.wait(lock, [&] { return permits > 0 || ctx.stop_requested(); });
            if (permits > 0) --permits;
        }
    });
    std::unique_lock<std::mutex> lock(m);
    self = &job;
    cv.notify_all();
    cv.wait(lock, [&] { return loops == 1; });

    // Paused before the permit: the body's next wait_while_paused starts while paused.
    job.set_paused(true);
    ++permits;
    cv.notify_all();
    // A body that ran on while paused shows up here; one that waits (as it must) never does.
    cv.wait_for(lock, 50ms, [&] { return loops > 1; });
    EXPECT_EQ(loops, 1) << "a paused job kept working";

    job.set_paused(false);
    cv.wait(lock, [&] { return loops == 2; });
    EXPECT_FALSE(paused_on_return) << "wait_while_paused returned while the job was paused";
    EXPECT_EQ(*job.snapshot(), 2);

    job.request_stop();
    cv.notify_all();
    lock.unlock();
    job.wait();
    EXPECT_EQ(job.state(), JobState::Stopped);
    EXPECT_EQ(loops, 2) << "the body went on after the stop";
}

TEST(Job, DestroyingARunningJobStopsItCleanly) {
    std::atomic<bool> finished{false};
    std::mutex m;
    std::condition_variable cv;
    bool started = false;
    {
        Job<int> job([&](JobContext<int>& ctx) {
            {
                std::lock_guard<std::mutex> lock(m);
                started = true;
            }
            cv.notify_all();
            while (!ctx.stop_requested()) std::this_thread::yield();
            finished = true;
        });
        std::unique_lock<std::mutex> lock(m);
        cv.wait(lock, [&] { return started; });
    }
    EXPECT_TRUE(finished.load());
}

// A tiny model, opened from a checkpoint (held in memory once open).
std::shared_ptr<ModelHandle> tiny_model() {
    torch::manual_seed(0);
    PixelTransformer model(tiny_config(AttentionKind::Krause));
    const TempDir dir("jobs");
    save_checkpoint(dir / "tiny.safetensors", model);
    return open_model(dir / "tiny.safetensors");
}

TEST(SamplingJob, StopsWithinOneTokenAndPublishesLiveImages) {
    auto model = tiny_model();
    SampleRequest request;
    request.count = 2;
    // Slow enough to stop half-way, with 40 ms from one token to the next: the test's reading of
    // the snapshot and its stop may be that far apart before the bound below is at risk.
    request.max_tokens_per_s = 50;
    auto job = start_sampling(model, request);
    while (job->snapshot()->images.filled < 8) std::this_thread::sleep_for(1ms);
    const int64_t seen = job->snapshot()->images.filled;
    job->request_stop();
    job->wait();
    EXPECT_EQ(job->state(), JobState::Stopped);
    const auto last = job->snapshot();
    EXPECT_LE(last->images.filled, seen + 2);
    EXPECT_LT(last->images.filled, last->images.seq_len());
    EXPECT_EQ(last->images.tokens.size(), 2u * 36u);
}

TEST(SamplingJob, FinishesWithEveryTokenAndAPromptKept) {
    auto model = tiny_model();
    SampleRequest request;
    request.count = 3;
    request.prefix = std::vector<uint8_t>(12, 200);
    request.prefix_len = 12;
    auto job = start_sampling(model, request);
    job->wait();
    ASSERT_EQ(job->state(), JobState::Finished) << job->error();
    const auto& images = job->snapshot()->images;
    EXPECT_EQ(images.filled, 36);
    for (int64_t i = 0; i < 3; ++i) {
        for (int64_t t = 0; t < 12; ++t) EXPECT_EQ(images.tokens[i * 36 + t], 200);
    }
    EXPECT_EQ(image_rgba(images, 2).size(), 6u * 6u * 4u);
}

TEST(InspectJob, ReportsEveryLayerAndRejectsBadPixels) {
    auto model = tiny_model();
    InspectRequest request;
    request.image = std::vector<uint8_t>(36, 0);
    request.sub_pixels = {20};
    auto job = start_inspect(model, request);
    job->wait();
    ASSERT_EQ(job->state(), JobState::Finished) << job->error();
    const auto& r = job->snapshot()->result;
    EXPECT_TRUE(job->snapshot()->ready);
    EXPECT_EQ(r.queries.at(0).position, 19);
    EXPECT_EQ(r.over_image.size(), 2u);

    request.sub_pixels = {0};
    auto bad = start_inspect(model, request);
    bad->wait();
    EXPECT_EQ(bad->state(), JobState::Failed);
    EXPECT_NE(bad->error().find("sub-pixel 0"), std::string::npos);
}

TEST(InspectJob, NextSubPixelDistributionMatchesTheModelsLikelihood) {
    // The probabilities shown beside the maps are the model's own: -log p(true value) must be
    // the NLL the trainer and evaluator compute for that sub-pixel.
    const TempDir dir("jobs-probs");
    torch::manual_seed(0);
    PixelTransformer tiny(tiny_config(AttentionKind::Krause));
    save_checkpoint(dir / "tiny.safetensors", tiny);
    auto model = open_model(dir / "tiny.safetensors");
    std::vector<uint8_t> image(36);
    for (size_t i = 0; i < image.size(); ++i) image[i] = static_cast<uint8_t>((i * 37) % 256);
    InspectRequest request;
    request.image = image;
    request.sub_pixels = {7, 30};
    request.image_measures = false;
    auto job = start_inspect(model, request);
    job->wait();
    ASSERT_EQ(job->state(), JobState::Finished) << job->error();
    const auto& probs = job->snapshot()->next_probs;
    ASSERT_EQ(probs.size(), 2u);
    auto reference = load_checkpoint(dir / "tiny.safetensors").model;
    reference->eval();
    torch::NoGradGuard no_grad;
    const auto nll = reference->token_nll(
        at::tensor(std::vector<int64_t>(image.begin(), image.end())).view({1, 36}));  // (1, T)
    for (size_t n = 0; n < 2; ++n) {
        const int64_t i = request.sub_pixels[n];
        ASSERT_EQ(probs[n].size(), 256u);
        double sum = 0;
        for (float p : probs[n]) sum += p;
        EXPECT_NEAR(sum, 1.0, 1e-4);
        EXPECT_NEAR(-std::log(probs[n][image[i]]), nll[0][i].item<double>(), 1e-4) << i;
    }
}

TEST(EvalJob, BadDataFolderIsAnErrorNotACrash) {
    auto model = tiny_model();
    EvalRequest request;
    request.data = "mnist:/no/such/folder";
    auto job = start_eval(model, request);
    job->wait();
    EXPECT_EQ(job->state(), JobState::Failed);
    EXPECT_NE(job->error().find("/no/such/folder"), std::string::npos) << job->error();
}

TEST(Engine, OpeningADamagedCheckpointThrowsNamingTheFile) {
    const TempDir dir("damaged");
    const auto path = dir / "broken.safetensors";
    std::ofstream(path) << "definitely not a checkpoint";
    try {
        open_model(path);
        FAIL() << "a damaged checkpoint must be rejected";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace krause
