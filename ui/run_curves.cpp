// Reading metrics.jsonl: train-loss records carry "bpd", evaluation records "test_bpd"; anything
// else (events such as a non-finite loss) is skipped, so logs of older runs still open.
#include "ui/run_curves.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace krause::ui {

namespace fs = std::filesystem;

RunCurves read_run_curves(const std::string& path) {
    fs::path file = path;
    std::error_code ec;
    if (fs::is_directory(file, ec)) file /= "metrics.jsonl";
    std::ifstream in(file);
    if (!in) throw std::runtime_error(file.string() + ": cannot read the metrics file");
    RunCurves run;
    run.path = file.string();
    const fs::path folder = fs::absolute(file, ec).parent_path();
    run.name = file.filename() == "metrics.jsonl" && !folder.filename().empty()
                   ? folder.filename().string()
                   : file.stem().string();
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        nlohmann::json record;
        try {
            record = nlohmann::json::parse(line);
        } catch (const std::exception&) {
            throw std::runtime_error(file.string() + ":" + std::to_string(number) +
                                     ": not a JSON record (is this a metrics.jsonl file?)");
        }
        if (!record.is_object() || !record.contains("step") || !record["step"].is_number()) {
            continue;
        }
        const int64_t step = record["step"].get<int64_t>();
        auto number_of = [&](const char* key, std::vector<TrainPoint>& out) {
            const auto it = record.find(key);
            if (it != record.end() && it->is_number()) out.push_back({step, it->get<double>()});
        };
        number_of("bpd", run.loss);
        number_of("test_bpd", run.test_all);
        number_of("test_bpd_predicted", run.test_pred);
    }
    if (run.empty()) {
        throw std::runtime_error(file.string() + ": holds no training or test records");
    }
    return run;
}

std::string metrics_beside(const std::string& checkpoint) {
    std::error_code ec;
    const fs::path file = fs::path(checkpoint).parent_path() / "metrics.jsonl";
    return fs::is_regular_file(file, ec) ? file.string() : std::string();
}

std::vector<double> smooth_ema(const std::vector<double>& values, double weight) {
    if (!(weight > 0)) return values;
    weight = std::min(weight, 0.999);
    std::vector<double> out;
    out.reserve(values.size());
    double last = 0, debias = 1;
    for (double v : values) {
        if (!std::isfinite(v)) {
            out.push_back(v);
            continue;
        }
        last = last * weight + (1 - weight) * v;
        debias *= weight;
        out.push_back(last / (1 - debias));
    }
    return out;
}

bool write_series_csv(const std::string& path, const std::vector<CsvSeries>& series,
                      std::string* error) {
    const std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp);
        out.precision(10);
        out << "series,step,value\n";
        for (const auto& s : series) {
            for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
                out << '"' << s.name << "\"," << s.x[i] << ',' << s.y[i] << '\n';
            }
        }
        if (!out.flush()) {
            *error = path + ": cannot write the CSV file";
            std::remove(tmp.c_str());
            return false;
        }
    }
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) {
        *error = path + ": cannot write the CSV file (" + ec.message() + ")";
        return false;
    }
    return true;
}

}  // namespace krause::ui
