// Runs an engine job in the foreground: polls its snapshots, turns Ctrl-C (SIGINT) and SIGTERM
// into a stop request, and rethrows the job's error so the command exits non-zero.
#pragma once

#include "training/job.h"

#include <atomic>
#include <chrono>
#include <csignal>
#include <memory>
#include <stdexcept>
#include <thread>

namespace krause::cli {

inline std::atomic<bool>& interrupted() {
    static std::atomic<bool> flag{false};
    return flag;
}

extern "C" inline void krause_on_sigint(int) { interrupted() = true; }

template <class Snapshot, class OnSnapshot>
std::shared_ptr<const Snapshot> run_job(Job<Snapshot>& job, OnSnapshot on_snapshot) {
    interrupted() = false;  // initialise the flag before the handler can touch it
    auto previous = std::signal(SIGINT, krause_on_sigint);
    auto previous_term = std::signal(SIGTERM, krause_on_sigint);
    bool asked = false;
    while (!job.done()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        if (interrupted() && !asked) {
            job.request_stop();
            asked = true;
        }
        on_snapshot(*job.snapshot());
    }
    job.wait();
    std::signal(SIGINT, previous);
    std::signal(SIGTERM, previous_term);
    const auto last = job.snapshot();
    on_snapshot(*last);
    if (job.state() == JobState::Failed) throw std::runtime_error(job.error());
    return last;
}

}  // namespace krause::cli
