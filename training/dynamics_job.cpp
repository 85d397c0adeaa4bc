// Runs model/dynamics.h on a private copy of the weights, publishing progress per batch.
#include "training/dynamics_job.h"

#include "model/dynamics.h"
#include "training/evaluate.h"
#include "training/model_handle.h"

#include <chrono>
#include <stdexcept>

namespace krause {

std::unique_ptr<Job<DynamicsSnapshot>> start_dynamics(std::shared_ptr<ModelHandle> handle,
                                                      DynamicsRequest request) {
    if (!handle) throw std::invalid_argument("no model is open");
    return std::make_unique<Job<DynamicsSnapshot>>([handle,
                                                    request](JobContext<DynamicsSnapshot>& job) {
        auto model = copy_weights(*handle, pick_device(request.device));
        const int64_t T = model->config().seq_len();
        if (request.count < 1 || static_cast<int64_t>(request.images.size()) != request.count * T) {
            throw std::invalid_argument("dynamics: expected " + std::to_string(request.count) +
                                        " images of " + std::to_string(T) + " sub-pixels, got " +
                                        std::to_string(request.images.size()) + " sub-pixels");
        }
        if (request.particles_of >= request.count) {
            throw std::invalid_argument(
                "dynamics: particle image " + std::to_string(request.particles_of) +
                " is not among the " + std::to_string(request.count) + " images");
        }
        const auto images =
            at::tensor(std::vector<int64_t>(request.images.begin(), request.images.end()),
                       at::kLong)
                .view({request.count, T});
        DynamicsSnapshot snap;
        snap.progress = {0, request.count, 0, 0, "images"};
        if (request.particles_of >= 0) {
            snap.particles = project_particles(model, images[request.particles_of]);
            snap.particles_ready = true;
            job.publish(snap);
        }
        const auto start = std::chrono::steady_clock::now();
        DynamicsOptions options;
        options.eps_fractions = request.eps_fractions;
        options.batch_size = request.batch_size;
        options.stop = &job.stop_flag();
        options.progress = [&](int64_t done, int64_t total) {
            const double t =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            const double rate = done / std::max(t, 1e-9);
            snap.progress = {done, total, rate, (total - done) / std::max(rate, 1e-9), "images"};
            job.publish(snap);
        };
        snap.measures = token_dynamics(model, images, options);
        snap.ready = snap.measures.images == request.count;
        job.publish(snap);
    });
}

}  // namespace krause
