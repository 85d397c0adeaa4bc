// MetricsLog: one JSON object per line, flushed so a crash loses at most the line being written.
#include "training/metrics.h"

#include <chrono>
#include <stdexcept>

namespace krause {

MetricsLog::MetricsLog(const std::string& path) : path_(path), out_(path, std::ios::app) {
    if (!out_) throw std::runtime_error(path + ": cannot open the metrics log for writing");
}

void MetricsLog::write(nlohmann::json record) {
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    record["time"] = std::chrono::duration<double>(now).count();
    out_ << record.dump() << '\n';
    out_.flush();
    if (!out_) throw std::runtime_error(path_ + ": writing the metrics log failed");
}

}  // namespace krause
