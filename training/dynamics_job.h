// The token-dynamics job: per-layer measures of the residual stream over images, and one image's
// token states as particles, published as plain structs for the command line and the studio.
#pragma once

#include "model/dynamics_types.h"
#include "training/engine.h"

#include <memory>
#include <string>
#include <vector>

namespace krause {

struct DynamicsRequest {
    std::vector<uint8_t> images;  // count * T sub-pixels, model order
    int64_t count = 0;
    int64_t particles_of = 0;     // which of the images gets particles; -1: none
    std::string device = "auto";  // auto (a GPU when there is one) | cpu | cuda
    std::vector<double> eps_fractions = default_eps_fractions();
    int64_t batch_size = 8;
};

struct DynamicsSnapshot {
    Progress progress;             // unit "images"
    bool particles_ready = false;  // published first: one image is quick
    Particles particles;
    bool ready = false;  // the measures over all images are in
    DynamicsMeasures measures;
};

std::unique_ptr<Job<DynamicsSnapshot>> start_dynamics(std::shared_ptr<ModelHandle> model,
                                                      DynamicsRequest request);

}  // namespace krause
