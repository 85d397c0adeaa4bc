// The models shipped in assets/models, listed in one registry file (assets/models/models.json)
// that the CLI, the studio and the tests read. No LibTorch type here: the GUI includes it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace krause {

struct BundledModel {
    std::string name;         // what --model and the studio's picker call it
    std::string file;         // under assets/models/
    std::string path;         // the file found on this machine; empty when it is missing
    std::string data;         // the data set it was trained on: mnist, fashion-mnist, cifar10
    std::string attention;    // krause, softmax, linear
    std::string preset;       // the ModelConfig preset of its shape
    std::string description;  // one short sentence
    double bpd_all = 0;        // measured test bits/dim over all T sub-pixels (whole test set)
    double bpd_predicted = 0;  // the same over the T-1 predicted ones
    double bpd_bound = 0;      // what the tests accept over T on the first bound_images test images
    int64_t bound_images = 32;  // fewer for the costly models, so the CPU test stays short
    int64_t parameters = 0;    // counted from the file's header; 0 when it is missing
    int64_t seq_len = 0;       // T, from the preset
    // Seconds to sample a 4x4 grid on 2 CPU threads: the registry's measurement of this model
    // (grid_measured), else scaled by parameters x T from its reference model's; 0 when a count
    // is unknown.
    double grid_seconds = 0;
    bool grid_measured = false;
};

// Every entry of the registry, present or not, in its order; empty when there is no registry.
// Throws std::runtime_error naming the file when the registry itself is malformed.
std::vector<BundledModel> bundled_registry();
// The entries whose files exist: what the CLI and the studio offer.
std::vector<BundledModel> bundled_models();
// The model called `name`; throws std::invalid_argument listing the names on offer.
BundledModel find_bundled_model(const std::string& name);

// Above this grid_seconds the studio marks a model as slow on a CPU.
constexpr double kSlowGridSeconds = 60.0;

}  // namespace krause
