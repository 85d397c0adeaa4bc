// The fetch job of the engine: data/fetch.h on a worker thread, its messages and byte counts
// turned into FetchSnapshots for the studio and the CLI.
#include <chrono>

#include "data/fetch.h"
#include "training/engine.h"

namespace krause {

namespace {

// Byte counts arrive many times a second; snapshots are published at most this often.
constexpr double kPublishEvery_s = 0.1;

}  // namespace

std::unique_ptr<Job<FetchSnapshot>> start_fetch(FetchRequest request) {
    const DatasetKind kind = parse_dataset_kind(request.kind);  // a bad name fails here, at once
    FetchSnapshot initial;
    initial.dir = request.dir.empty() ? kind_dir(default_fetch_root(), kind) : request.dir;
    const std::string dir = initial.dir;
    auto body = [kind, dir, base_url = request.base_url](JobContext<FetchSnapshot>& context) {
        using Clock = std::chrono::steady_clock;
        FetchSnapshot snap;
        snap.dir = dir;
        snap.progress.unit = "bytes";
        auto file_start = Clock::now();
        auto last_publish = Clock::now() - std::chrono::hours(1);
        FetchHooks hooks;
        hooks.stop = &context.stop_flag();
        hooks.message = [&](const std::string& line) {
            snap.lines.push_back(line);
            context.publish(snap);
        };
        hooks.bytes = [&](const std::string& name, int64_t done, int64_t total) {
            const auto now = Clock::now();
            if (name != snap.file) {
                snap.file = name;
                file_start = now;
            }
            const double seconds = std::chrono::duration<double>(now - file_start).count();
            snap.progress.done = done;
            snap.progress.total = total;
            snap.progress.rate = seconds > 0 ? double(done) / seconds : 0;
            snap.progress.eta_s = snap.progress.rate > 0 && total > done
                                      ? double(total - done) / snap.progress.rate
                                      : 0;
            const bool finished = total > 0 && done >= total;
            if (finished ||
                std::chrono::duration<double>(now - last_publish).count() >= kPublishEvery_s) {
                last_publish = now;
                context.publish(snap);
            }
        };
        try {
            fetch_dataset(kind, dir, hooks, base_url);
        } catch (const FetchStopped&) {
            context.publish(snap);
            return;  // the job ends Stopped
        }
        snap.done = true;
        context.publish(snap);
    };
    return std::make_unique<Job<FetchSnapshot>>(std::move(body), std::move(initial));
}

}  // namespace krause
