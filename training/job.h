// Job: work on a worker thread that publishes immutable snapshots and honours stop and pause.
#pragma once

#include <atomic>
#include <condition_variable>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace krause {

enum class JobState { Running, Finished, Stopped, Failed };

inline const char* to_string(JobState state) {
    switch (state) {
        case JobState::Running: return "running";
        case JobState::Finished: return "finished";
        case JobState::Stopped: return "stopped";
        case JobState::Failed: return "failed";
    }
    return "unknown";
}

// What the body of a job sees: publish snapshots, check stop, wait while paused.
template <class Snapshot>
class JobContext {
public:
    virtual ~JobContext() = default;
    virtual void publish(Snapshot snapshot) = 0;
    virtual bool stop_requested() const = 0;
    virtual const std::atomic<bool>& stop_flag() const = 0;
    // Blocks while the job is paused; returns false when a stop was asked for meanwhile.
    virtual bool wait_while_paused() = 0;
};

// Runs `body` on its own thread. Errors thrown by the body end the job in state Failed with the
// message kept; they never escape the thread. Destroying a Job stops and joins it.
template <class Snapshot>
class Job final : private JobContext<Snapshot> {
public:
    using Body = std::function<void(JobContext<Snapshot>&)>;

    explicit Job(Body body, Snapshot initial = Snapshot())
        : latest_(std::make_shared<const Snapshot>(std::move(initial))) {
        thread_ = std::thread([this, body = std::move(body)] { run(body); });
    }
    ~Job() override {
        request_stop();
        if (thread_.joinable()) thread_.join();
    }
    Job(const Job&) = delete;
    Job& operator=(const Job&) = delete;

    void request_stop() {
        stop_ = true;
        set_paused(false);
    }
    void set_paused(bool paused) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            paused_ = paused;
        }
        cv_.notify_all();
    }
    bool paused() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return paused_;
    }
    std::shared_ptr<const Snapshot> snapshot() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return latest_;
    }
    JobState state() const { return state_.load(); }
    bool done() const { return state_.load() != JobState::Running; }
    std::string error() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return error_;
    }
    // Waits for the body to return; the job's final state and snapshot are then settled.
    void wait() {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [this] { return state_.load() != JobState::Running; });
    }

private:
    void run(const Body& body) {
        JobState end = JobState::Finished;
        std::string message;
        try {
            body(*this);
            if (stop_) end = JobState::Stopped;
        } catch (const std::exception& e) {
            end = JobState::Failed;
            message = e.what();
        } catch (...) {
            end = JobState::Failed;
            message = "unknown error";
        }
        {
            std::lock_guard<std::mutex> lock(mutex_);
            error_ = std::move(message);
            state_ = end;
        }
        cv_.notify_all();
    }

    void publish(Snapshot snapshot) override {
        auto next = std::make_shared<const Snapshot>(std::move(snapshot));
        std::lock_guard<std::mutex> lock(mutex_);
        latest_ = std::move(next);
    }
    bool stop_requested() const override { return stop_.load(); }
    const std::atomic<bool>& stop_flag() const override { return stop_; }
    bool wait_while_paused() override {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [this] { return !paused_ || stop_.load(); });
        return !stop_.load();
    }

    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::shared_ptr<const Snapshot> latest_;
    std::atomic<bool> stop_{false};
    bool paused_ = false;
    std::atomic<JobState> state_{JobState::Running};
    std::string error_;
    std::thread thread_;
};

}  // namespace krause
