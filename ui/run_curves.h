// Training curves read back from a run's metrics.jsonl (written by the trainer for the CLI and
// the studio alike), with the smoothing and the CSV export the Train panel offers.
#pragma once

#include "training/engine.h"

#include <string>
#include <vector>

namespace krause::ui {

struct RunCurves {
    std::string path;                   // the metrics.jsonl file
    std::string name;                   // its run folder's name, for the legend
    std::vector<TrainPoint> loss;       // training loss, bits per sub-pixel, per logged step
    std::vector<TrainPoint> test_all;   // test BPD over all T sub-pixels, per evaluation
    std::vector<TrainPoint> test_pred;  // test BPD over the T-1 predicted sub-pixels
    bool empty() const { return loss.empty() && test_all.empty(); }
};

// Reads a metrics.jsonl file (or the metrics.jsonl inside a run folder). Throws
// std::runtime_error naming the file (and the line) when it is missing or not JSON lines.
RunCurves read_run_curves(const std::string& path);
// The metrics.jsonl beside a checkpoint, or "" when there is none.
std::string metrics_beside(const std::string& checkpoint);

// TensorBoard's smoothing: an exponential moving average with weight in [0, 1), debiased so that
// the first points are not pulled towards zero. weight 0 returns the values unchanged.
std::vector<double> smooth_ema(const std::vector<double>& values, double weight);

// One named column pair of a chart, for the CSV export.
struct CsvSeries {
    std::string name;
    std::vector<double> x, y;
};
// Writes "series,step,value" rows; false with a message naming the path when it cannot.
bool write_series_csv(const std::string& path, const std::vector<CsvSeries>& series,
                      std::string* error);

}  // namespace krause::ui
