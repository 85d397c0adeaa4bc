// Token dynamics across depth: per layer, how far the token states of the residual stream have
// moved toward one consensus state (cosine, distance to the mean, effective rank, clusters).
#pragma once

#include "model/dynamics_types.h"
#include "model/transformer.h"

#include <atomic>
#include <functional>
#include <vector>

namespace krause {

// The residual stream of a forward pass over tokens (B, S): L + 1 tensors (B, S, d), the states
// after the embedding and after each block. The same steps as PixelTransformerImpl::forward.
std::vector<at::Tensor> residual_stream(PixelTransformer& model, const at::Tensor& tokens);

// Measures of the states x (T, d), T >= 2, computed with batched tensor ops in fp64 on x's
// device. Clusters: the connected components of the graph joining tokens at distance <= eps,
// eps = fraction * (lower median of the T(T-1)/2 pairwise distances).
StateMeasures state_measures(const at::Tensor& x, const std::vector<double>& eps_fractions);
// The same measures by plain loops in double on the CPU (union-find, Jacobi eigenvalues): the
// specification the fast form is tested against. O(T^2 d + d^3); for tests.
StateMeasures state_measures_reference(const at::Tensor& x,
                                       const std::vector<double>& eps_fractions);

// Connected components of the graph with edges where dist (T, T) <= eps: min-label propagation
// with pointer jumping, all in tensor ops.
int64_t count_components(const at::Tensor& dist, double eps);

struct DynamicsOptions {
    std::vector<double> eps_fractions = default_eps_fractions();
    int64_t batch_size = 8;
    std::function<void(int64_t done, int64_t total)> progress;
    const std::atomic<bool>* stop = nullptr;  // checked between batches
};

// Per-layer measures averaged over images (N, T) (each image's measures, then the mean), with
// the attention measures of model/probe.h over the same images.
DynamicsMeasures token_dynamics(PixelTransformer& model, const at::Tensor& images,
                                const DynamicsOptions& options = {});

// The states of one image (T tokens) at every layer on the two main principal axes of all of
// them together.
Particles project_particles(PixelTransformer& model, const at::Tensor& image);

}  // namespace krause
