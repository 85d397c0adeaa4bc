// The job and snapshot plumbing the CLI and the studio share: stop, pause, errors, snapshots.
#include "model/checkpoint.h"
#include "test_util.h"
#include "training/engine.h"
#include "training/job.h"

#include <gtest/gtest.h>
#include <torch/utils.h>

#include <chrono>
#include <cmath>
#include <stdexcept>
#include <thread>

namespace krause {
namespace {

using namespace std::chrono_literals;
using test::fresh_dir;
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

TEST(Job, StopAndPauseAreSeenByTheBody) {
    std::atomic<int> loops{0};
    Job<int> job([&](JobContext<int>& ctx) {
        while (ctx.wait_while_paused()) {
            ctx.publish(++loops);
            std::this_thread::sleep_for(1ms);
        }
    });
    std::this_thread::sleep_for(20ms);
    job.set_paused(true);
    std::this_thread::sleep_for(20ms);
    const int frozen = loops.load();
    std::this_thread::sleep_for(50ms);
    EXPECT_LE(loops.load(), frozen + 1) << "a paused job kept working";
    job.set_paused(false);
    std::this_thread::sleep_for(20ms);
    EXPECT_GT(loops.load(), frozen);
    job.request_stop();
    job.wait();
    EXPECT_EQ(job.state(), JobState::Stopped);
}

TEST(Job, DestroyingARunningJobStopsItCleanly) {
    std::atomic<bool> finished{false};
    {
        Job<int> job([&](JobContext<int>& ctx) {
            while (!ctx.stop_requested()) std::this_thread::sleep_for(1ms);
            finished = true;
        });
        std::this_thread::sleep_for(5ms);
    }
    EXPECT_TRUE(finished.load());
}

std::string tiny_checkpoint() {
    torch::manual_seed(0);
    PixelTransformer model(tiny_config(AttentionKind::Krause));
    const auto path = fresh_dir("jobs") + "/tiny.safetensors";
    save_checkpoint(path, model);
    return path;
}

TEST(SamplingJob, StopsWithinOneTokenAndPublishesLiveImages) {
    auto model = open_model(tiny_checkpoint());
    SampleRequest request;
    request.count = 2;
    request.max_tokens_per_s = 400;  // slow enough to stop half-way
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
    auto model = open_model(tiny_checkpoint());
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
    auto model = open_model(tiny_checkpoint());
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
    auto model = open_model(tiny_checkpoint());
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
    auto reference = load_checkpoint(tiny_checkpoint()).model;
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
    auto model = open_model(tiny_checkpoint());
    EvalRequest request;
    request.data = "mnist:/no/such/folder";
    auto job = start_eval(model, request);
    job->wait();
    EXPECT_EQ(job->state(), JobState::Failed);
    EXPECT_NE(job->error().find("/no/such/folder"), std::string::npos) << job->error();
}

TEST(Engine, OpeningADamagedCheckpointThrowsNamingTheFile) {
    const auto path = fresh_dir("damaged") + "/broken.safetensors";
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
