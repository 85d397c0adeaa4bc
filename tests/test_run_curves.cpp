// Training curves read back from metrics.jsonl (ui/run_curves.h, free of the GUI): the records the
// trainer writes, the smoothing of the Train panel's chart, and its CSV export.
#include "test_util.h"
#include "ui/run_curves.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace krause::ui {
namespace {

TEST(RunCurves, ReadsLossAndTestRecordsAndSkipsEvents) {
    const test::TempDir tmp("run_curves_read");
    const auto dir = std::filesystem::path(tmp.path()) / "my-run";
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "metrics.jsonl")
        << R"({"step":1,"loss":2.0,"bpd":2.885,"lr":0.001,"time":1})"
        << "\n"
        << R"({"step":2,"loss":1.5,"bpd":2.164,"lr":0.001,"time":2})"
        << "\n"
        << R"({"step":2,"test_bpd":2.5,"test_bpd_predicted":2.4,"sink_mass":[0.1]})"
        << "\n"
        << "\n"
        << R"({"step":3,"event":"non-finite loss"})"
        << "\n";
    const RunCurves run = read_run_curves(dir.string());  // the folder names its metrics.jsonl
    EXPECT_EQ(run.name, "my-run");
    ASSERT_EQ(run.loss.size(), 2u);
    EXPECT_EQ(run.loss[1].step, 2);
    EXPECT_DOUBLE_EQ(run.loss[1].value, 2.164);
    ASSERT_EQ(run.test_all.size(), 1u);
    EXPECT_DOUBLE_EQ(run.test_all[0].value, 2.5);
    ASSERT_EQ(run.test_pred.size(), 1u);
    EXPECT_DOUBLE_EQ(run.test_pred[0].value, 2.4);
    EXPECT_EQ(metrics_beside((dir / "checkpoint.safetensors").string()),
              (dir / "metrics.jsonl").string());
}

TEST(RunCurves, NamesTheFileAndLineOfABadRecord) {
    const test::TempDir tmp("run_curves_bad");
    const std::filesystem::path dir = tmp.path();
    std::ofstream(dir / "metrics.jsonl") << R"({"step":1,"bpd":2.0})"
                                         << "\nnot json\n";
    try {
        read_run_curves((dir / "metrics.jsonl").string());
        FAIL() << "a damaged log must be refused";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("metrics.jsonl:2"), std::string::npos) << e.what();
    }
    EXPECT_THROW(read_run_curves((dir / "missing.jsonl").string()), std::runtime_error);
    EXPECT_EQ(metrics_beside((dir / "nowhere" / "c.safetensors").string()), "");
}

TEST(RunCurves, SmoothingIsTheDebiasedMovingAverage) {
    // The plain definition: point n is the average of points 0..n weighted by w^(n-k).
    const std::vector<double> values = {4.0, 1.0, 3.0, 2.5, 7.0};
    const double w = 0.6;
    const auto smooth = smooth_ema(values, w);
    ASSERT_EQ(smooth.size(), values.size());
    for (size_t n = 0; n < values.size(); ++n) {
        double sum = 0, weights = 0;
        for (size_t k = 0; k <= n; ++k) {
            const double weight = std::pow(w, static_cast<double>(n - k));
            sum += weight * values[k];
            weights += weight;
        }
        EXPECT_NEAR(smooth[n], sum / weights, 1e-12) << n;
    }
    EXPECT_EQ(smooth_ema(values, 0.0), values);
}

TEST(RunCurves, CsvHasOneRowPerPointAndNamesAPathItCannotWrite) {
    const test::TempDir tmp("run_curves_csv");
    const std::filesystem::path dir = tmp.path();
    std::string error;
    ASSERT_TRUE(write_series_csv((dir / "c.csv").string(),
                                 {{"train loss", {1, 2}, {3.5, 3.0}}, {"test", {2}, {2.75}}},
                                 &error))
        << error;
    std::ifstream in(dir / "c.csv");
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(all,
              "series,step,value\n\"train loss\",1,3.5\n\"train loss\",2,3\n\"test\",2,2.75\n");
    EXPECT_FALSE(write_series_csv((dir / "no" / "c.csv").string(), {}, &error));
    EXPECT_NE(error.find("no/c.csv"), std::string::npos) << error;
}

}  // namespace
}  // namespace krause::ui
