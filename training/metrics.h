// Metrics as JSON lines, appended and flushed one record at a time.
#pragma once

#include <nlohmann/json.hpp>

#include <fstream>
#include <string>

namespace krause {

class MetricsLog {
public:
    // Opens for appending; throws std::runtime_error naming the path when it cannot.
    explicit MetricsLog(const std::string& path);
    // Writes one record with a wall-clock "time" field added.
    void write(nlohmann::json record);

private:
    std::string path_;
    std::ofstream out_;
};

}  // namespace krause
