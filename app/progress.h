// Terminal progress: a redrawn bar with rate and ETA on a terminal, plain lines otherwise.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace krause::cli {

class ProgressPrinter {
public:
    // `label` precedes the bar; output goes to stderr.
    explicit ProgressPrinter(std::string label);
    // Redraws (terminal) or prints a line at most every few seconds (not a terminal).
    void update(int64_t done, int64_t total, double rate, const std::string& unit,
                const std::string& extra = "");
    // Prints a line above the bar without garbling it.
    void message(const std::string& line);
    void finish();

private:
    std::string label_;
    bool tty_;
    bool drawn_ = false;
    std::chrono::steady_clock::time_point last_;
    int64_t last_done_ = -1;
};

std::string format_duration(double seconds);

}  // namespace krause::cli
