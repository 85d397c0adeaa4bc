// The engine as front ends see it: plain structs in, jobs publishing plain snapshots out.
// No LibTorch type appears here, so the GUI can include it without torch headers.
#pragma once

#include "data/data_dirs.h"
#include "model/probe_types.h"
#include "training/job.h"
#include "training/train_config.h"

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace krause {

// Images as sub-pixel tokens in model order: index = (row * width + col) * channels + channel.
struct Images {
    int64_t count = 0, height = 0, width = 0, channels = 0;
    std::vector<uint8_t> tokens;  // count * height * width * channels
    int64_t filled = 0;           // sub-pixels known per image (the rest are 0)
    std::vector<int64_t> filled_each;  // when not empty, overrides `filled` image by image

    int64_t seq_len() const { return height * width * channels; }
    int64_t filled_of(int64_t index) const {
        return filled_each.empty() ? filled : filled_each[static_cast<size_t>(index)];
    }
};

// One image as RGBA bytes (height * width * 4): grey for one channel; unknown sub-pixels of a
// partly generated image are drawn in a dim blue so the frontier is visible.
std::vector<uint8_t> image_rgba(const Images& images, int64_t index);
// Writes a grid of the images with `columns` per row (0 = square-ish) and a gap as PNG, each
// image pixel `scale` x `scale` (the gap too). Throws std::runtime_error naming the path when it
// cannot be written.
void write_png_grid(const std::string& path, const Images& images, int64_t columns = 0,
                    int64_t scale = 1);

struct Progress {
    int64_t done = 0, total = 0;
    double rate = 0;   // units per second
    double eta_s = 0;  // seconds left, 0 when unknown
    std::string unit;  // "tokens", "images", "steps"
};

struct ModelSummary {
    std::string path;
    std::string attention;
    int64_t image_height = 0, image_width = 0, image_channels = 0;
    int64_t d_model = 0, n_heads = 0, n_layers = 0, window = 0, top_k = 0;
    int64_t parameters = 0;
    int64_t step = 0;     // training steps behind the weights (0 for a fresh model)
    std::string dataset;  // what it was trained on, if known
    std::string config_json;
};

// A loaded model shared by jobs; each job works on its own copy of the weights.
class ModelHandle;
// Throws std::runtime_error with a message naming the file and the problem.
std::shared_ptr<ModelHandle> open_model(const std::string& path);
ModelSummary summarize(const ModelHandle& model);
// The default bundled model: the first of assets/models/models.json whose file exists (assets/
// found beside the executable, in $KRAUSE_ASSETS_DIR or the source tree); empty when there is none.
std::string bundled_model_path();

struct SampleRequest {
    int64_t count = 16;
    double temperature = 1.0;
    uint64_t seed = 0;
    // Optional prompt: prefix_len tokens shared by all images, or count * prefix_len tokens.
    std::vector<uint8_t> prefix;
    int64_t prefix_len = 0;
    int64_t publish_every = 1;    // publish a snapshot every this many sub-pixels
    // ... and at most one per this many seconds (0: no limit), so that a display drawing each
    // snapshot is not asked for more frames than it shows; the last one is always published.
    double publish_interval_s = 0;
    // Slow down for display, every token reported as it comes; 0 = as fast as possible.
    double max_tokens_per_s = 0;
    std::string device = "auto";  // auto (a GPU when there is one) | cpu | cuda
    std::string precision = "auto";  // auto (bf16 on a GPU) | fp32 | bf16 | fp8
};
struct SampleSnapshot {
    Images images;
    Progress progress;  // unit "tokens" (sub-pixels per image)
};
std::unique_ptr<Job<SampleSnapshot>> start_sampling(std::shared_ptr<ModelHandle> model,
                                                    SampleRequest request);

struct InspectRequest {
    std::vector<uint8_t> image;       // T tokens
    std::vector<int64_t> sub_pixels;  // sub-pixel indices i >= 1 to explain (query i - 1)
    bool image_measures = true;       // also average the measures over the whole image
};
struct InspectSnapshot {
    bool ready = false;
    ProbeResult result;  // result.queries[n].position = sub_pixels[n] - 1
    // next_probs[n][v]: the model's probability (temperature 1) that sub-pixel sub_pixels[n] has
    // value v, given the sub-pixels before it: the 256-way prediction the maps explain.
    std::vector<std::vector<float>> next_probs;
};
std::unique_ptr<Job<InspectSnapshot>> start_inspect(std::shared_ptr<ModelHandle> model,
                                                    InspectRequest request);

struct EvalRequest {
    std::string data = "mnist";  // KIND[:DIR]
    std::string split = "test";  // test | train
    int64_t limit = 0;           // images (0 = the whole split)
    int64_t batch_size = 32;
    std::string device = "auto";  // auto (a GPU when there is one) | cpu | cuda
};
struct EvalResult {
    double bpd_all = 0;        // over all T sub-pixels (prior included)
    double bpd_predicted = 0;  // over the T-1 the network predicts (the paper's figure)
    int64_t images = 0;
    double seconds = 0;
};
struct EvalSnapshot {
    Progress progress;  // unit "images"
    bool done = false;
    EvalResult result;
};
std::unique_ptr<Job<EvalSnapshot>> start_eval(std::shared_ptr<ModelHandle> model,
                                              EvalRequest request);

struct TrainPoint {
    int64_t step = 0;
    double value = 0;
};
struct TrainSnapshot {
    Progress progress;  // unit "steps"
    int64_t step = 0;
    double loss_bpd = 0;  // training loss of the last step, bits per sub-pixel
    double lr = 0;
    double tokens_per_s = 0;
    std::vector<TrainPoint> loss_curve;        // training loss (bits/dim) per logged step
    std::vector<TrainPoint> test_curve;        // test BPD over all T dims, per evaluation
    std::vector<TrainPoint> test_curve_pred;   // test BPD over the T-1 predicted dims
    std::vector<int64_t> sink_steps;           // steps of the evaluations ...
    std::vector<std::vector<double>> sink_mass;  // ... and [evaluation][layer] sink mass
    // The token states of the same evaluation images, [evaluation][state] for the states after
    // the embedding and after each block (model/dynamics.h): mean pairwise cosine, distance to
    // consensus, effective rank, and clusters at half the median pairwise distance.
    std::vector<std::vector<double>> state_cosine, state_consensus, state_rank, state_clusters;
    Images preview;                            // samples drawn at the last evaluation
    std::string checkpoint;                    // the newest checkpoint written
    std::string status;                        // one line for the user
    std::string data;      // what was loaded: the data set, its folder, the image counts
    std::string schedule;  // with a time budget: the step count it gave and why, once timed
};
std::unique_ptr<Job<TrainSnapshot>> start_training(TrainConfig config);

// Data folders: data_search_paths(), find_data_dir(kind), remember_data_dir(root) and
// default_fetch_root() come from data/data_dirs.h (included above), torch-free like this header.
struct FetchRequest {
    std::string kind = "mnist";  // mnist | fashion-mnist | cifar10
    std::string dir;             // the kind's folder; "" = kind_dir(default_fetch_root(), kind)
    std::string base_url;        // a mirror instead of the official URLs (file:// works)
};
struct FetchSnapshot {
    Progress progress;               // unit "bytes", of the file being downloaded
    std::string file;                // that file
    std::vector<std::string> lines;  // every message so far (present, downloaded, extracted)
    std::string dir;                 // where the data set goes
    bool done = false;               // the data set is ready in dir
};
// Downloads a data set on a worker thread; a stop ends it within a fraction of a second (state
// Stopped, nothing half-written left behind). Failures are one line: the job's error().
std::unique_ptr<Job<FetchSnapshot>> start_fetch(FetchRequest request);

}  // namespace krause
