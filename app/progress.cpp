// ProgressPrinter: one bar redrawn in place on a terminal, or a plain line every few seconds.
#include "app/progress.h"

#include <fmt/format.h>

#include <cstdio>
#include <unistd.h>

namespace krause::cli {

std::string format_duration(double seconds) {
    if (!(seconds >= 0) || seconds > 1e7) return "--:--";
    const auto s = static_cast<int64_t>(seconds + 0.5);
    if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
    return fmt::format("{}:{:02}", s / 60, s % 60);
}

ProgressPrinter::ProgressPrinter(std::string label)
    : label_(std::move(label)), tty_(::isatty(STDERR_FILENO) == 1),
      last_(std::chrono::steady_clock::now() - std::chrono::hours(1)) {}

void ProgressPrinter::update(int64_t done, int64_t total, double rate, const std::string& unit,
                             const std::string& extra) {
    const auto now = std::chrono::steady_clock::now();
    const double since = std::chrono::duration<double>(now - last_).count();
    const bool complete = total > 0 && done >= total;
    if (done == last_done_ && !complete) return;
    if (since < (tty_ ? 0.1 : 5.0) && !complete) return;
    if (complete && done == last_done_) return;
    last_ = now;
    last_done_ = done;
    const double frac = total > 0 ? static_cast<double>(done) / total : 0.0;
    const double eta = rate > 0 && total > done ? (total - done) / rate : 0.0;
    const std::string stats = fmt::format("{}/{} {}  {:.1f} {}/s  ETA {}{}", done, total, unit, rate,
                                          unit, format_duration(eta), extra.empty() ? "" : "  " + extra);
    if (tty_) {
        constexpr int kWidth = 30;
        const int filled = static_cast<int>(frac * kWidth);
        std::string bar(filled, '#');
        bar.append(kWidth - filled, '.');
        std::fprintf(stderr, "\r\033[K%s [%s] %3.0f%% %s", label_.c_str(), bar.c_str(), frac * 100,
                     stats.c_str());
        drawn_ = true;
    } else {
        std::fprintf(stderr, "%s %3.0f%% %s\n", label_.c_str(), frac * 100, stats.c_str());
    }
    std::fflush(stderr);
}

void ProgressPrinter::message(const std::string& line) {
    if (tty_ && drawn_) std::fprintf(stderr, "\r\033[K");
    std::fprintf(stderr, "%s\n", line.c_str());
    drawn_ = false;
    // A terminal's bar, cleared for the line, is drawn again at the next update; a log keeps
    // its last progress line above the message, so that one is not written twice.
    if (tty_) {
        last_ = std::chrono::steady_clock::now() - std::chrono::hours(1);
        last_done_ = -1;
    }
}

void ProgressPrinter::finish() {
    if (tty_ && drawn_) std::fprintf(stderr, "\n");
    drawn_ = false;
}

}  // namespace krause::cli
