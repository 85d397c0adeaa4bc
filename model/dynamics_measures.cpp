// The per-layer token-state measures: a fast form in batched fp64 tensor ops and the plain
// reference in loops that the tests hold it to.
#include "model/dynamics.h"

#include <torch/nn/module.h>

#include <algorithm>
#include <cmath>
#include <numeric>

namespace krause {
namespace {

// Centred states this much smaller than the states themselves count as one point: their
// singular values are rounding noise, whose entropy would read as a high rank.
constexpr double kSinglePoint = 1e-9;

void check_states(const at::Tensor& x, const std::vector<double>& fractions) {
    TORCH_CHECK(x.dim() == 2 && x.size(0) >= 2, "token states must be (T, d) with T >= 2, got ",
                x.sizes());
    for (double f : fractions) TORCH_CHECK(f >= 0, "eps fractions must be >= 0, got ", f);
}

double rank_from_singular_values(const std::vector<double>& s, double norm_centred,
                                 double norm_states) {
    if (norm_centred <= kSinglePoint * norm_states) return 1.0;
    const double total = std::accumulate(s.begin(), s.end(), 0.0);
    double entropy = 0;
    for (double v : s) {
        const double p = v / total;
        if (p > 0) entropy -= p * std::log(p);
    }
    return std::exp(entropy);
}

// Eigenvalues of the symmetric n x n matrix a (row-major) by cyclic Jacobi rotations.
std::vector<double> symmetric_eigenvalues(std::vector<double> a, int64_t n) {
    auto at = [&](int64_t i, int64_t j) -> double& { return a[i * n + j]; };
    double total = 0;
    for (double v : a) total += v * v;
    for (int sweep = 0; sweep < 100; ++sweep) {
        double off = 0;
        for (int64_t p = 0; p < n; ++p) {
            for (int64_t q = p + 1; q < n; ++q) off += at(p, q) * at(p, q);
        }
        if (off <= 1e-28 * total) break;
        for (int64_t p = 0; p < n; ++p) {
            for (int64_t q = p + 1; q < n; ++q) {
                if (at(p, q) == 0) continue;
                const double theta = (at(q, q) - at(p, p)) / (2 * at(p, q));
                const double t =
                    (theta >= 0 ? 1.0 : -1.0) / (std::abs(theta) + std::sqrt(theta * theta + 1));
                const double c = 1 / std::sqrt(t * t + 1), s = t * c;
                for (int64_t k = 0; k < n; ++k) {
                    const double kp = at(k, p), kq = at(k, q);
                    at(k, p) = c * kp - s * kq;
                    at(k, q) = s * kp + c * kq;
                }
                for (int64_t k = 0; k < n; ++k) {
                    const double pk = at(p, k), qk = at(q, k);
                    at(p, k) = c * pk - s * qk;
                    at(q, k) = s * pk + c * qk;
                }
            }
        }
    }
    std::vector<double> values(n);
    for (int64_t i = 0; i < n; ++i) values[i] = at(i, i);
    return values;
}

int64_t find_root(std::vector<int64_t>& parent, int64_t i) {
    while (parent[i] != i) {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    return i;
}

}  // namespace

int64_t count_components(const at::Tensor& dist, double eps) {
    TORCH_CHECK(dist.dim() == 2 && dist.size(0) == dist.size(1), "distances must be (T, T)");
    const int64_t T = dist.size(0);
    const auto adjacent = dist.le(eps);  // (T, T)
    const auto index = at::arange(T, dist.options().dtype(at::kLong));
    const auto none = at::full({}, T, index.options());
    auto labels = index.clone();
    while (true) {
        // Every token takes the smallest label among its neighbours and itself ...
        auto next = at::minimum(at::where(adjacent, labels.view({1, T}), none).amin(1), labels);
        // ... then follows labels as pointers to their end, so a chain settles in log steps.
        while (true) {
            auto jumped = next.index_select(0, next);
            if (jumped.equal(next)) break;
            next = std::move(jumped);
        }
        if (next.equal(labels)) break;
        labels = std::move(next);
    }
    return labels.eq(index).sum().item<int64_t>();
}

StateMeasures state_measures(const at::Tensor& states, const std::vector<double>& fractions) {
    check_states(states, fractions);
    torch::NoGradGuard no_grad;
    const auto x = states.to(at::kDouble);  // (T, d)
    const int64_t T = x.size(0);
    StateMeasures m;

    // sum_{i != j} cos_ij = ||sum_i u_i||^2 - sum_i ||u_i||^2 for the unit rows u_i (zero rows
    // stay zero: a zero state has cosine 0 with everything).
    const auto unit = x / x.norm(2, 1, true).clamp_min(1e-300);
    const double all_pairs = unit.sum(0).pow(2).sum().item<double>();
    const double self = unit.pow(2).sum().item<double>();
    m.cosine = (all_pairs - self) / static_cast<double>(T * (T - 1));

    const auto centred = x - x.mean(0, true);
    const double norm_x = x.norm().item<double>(), norm_c = centred.norm().item<double>();
    m.consensus = norm_x > 0 ? norm_c / norm_x : 0.0;
    const auto s = at::linalg_svdvals(centred).to(at::kCPU).contiguous();  // read on the host
    m.effective_rank = rank_from_singular_values(
        std::vector<double>(s.data_ptr<double>(), s.data_ptr<double>() + s.numel()), norm_c,
        norm_x);

    // Distances by differences, not the Gram form: identical tokens must be at distance 0.
    const auto dist = at::cdist(x, x, 2.0, /*compute_mode=donot_use_mm*/ 2);  // (T, T)
    const auto upper = at::triu_indices(T, T, 1, x.options().dtype(at::kLong));
    m.median_distance = dist.index({upper[0], upper[1]}).median().item<double>();
    for (double f : fractions) {
        m.clusters.push_back(static_cast<double>(count_components(dist, f * m.median_distance)));
    }
    return m;
}

StateMeasures state_measures_reference(const at::Tensor& states,
                                       const std::vector<double>& fractions) {
    check_states(states, fractions);
    const auto cpu = states.detach().to(at::kCPU).to(at::kDouble).contiguous();
    const int64_t T = cpu.size(0), d = cpu.size(1);
    const double* x = cpu.data_ptr<double>();
    auto row = [&](int64_t i) { return x + i * d; };
    StateMeasures m;

    std::vector<double> norm(T, 0.0);
    for (int64_t i = 0; i < T; ++i) {
        for (int64_t k = 0; k < d; ++k) norm[i] += row(i)[k] * row(i)[k];
        norm[i] = std::sqrt(norm[i]);
    }
    double cos_sum = 0;
    for (int64_t i = 0; i < T; ++i) {
        for (int64_t j = 0; j < T; ++j) {
            if (i == j || norm[i] == 0 || norm[j] == 0) continue;
            double dot = 0;
            for (int64_t k = 0; k < d; ++k) dot += row(i)[k] * row(j)[k];
            cos_sum += dot / (norm[i] * norm[j]);
        }
    }
    m.cosine = cos_sum / static_cast<double>(T * (T - 1));

    std::vector<double> mean(d, 0.0), centred(T * d);
    for (int64_t i = 0; i < T; ++i) {
        for (int64_t k = 0; k < d; ++k) mean[k] += row(i)[k] / T;
    }
    double norm_x = 0, norm_c = 0;
    for (int64_t i = 0; i < T; ++i) {
        for (int64_t k = 0; k < d; ++k) {
            centred[i * d + k] = row(i)[k] - mean[k];
            norm_x += row(i)[k] * row(i)[k];
            norm_c += centred[i * d + k] * centred[i * d + k];
        }
    }
    norm_x = std::sqrt(norm_x);
    norm_c = std::sqrt(norm_c);
    m.consensus = norm_x > 0 ? norm_c / norm_x : 0.0;

    // Singular values of the centred states: square roots of the eigenvalues of its d x d Gram.
    std::vector<double> gram(d * d, 0.0);
    for (int64_t a = 0; a < d; ++a) {
        for (int64_t b = 0; b < d; ++b) {
            for (int64_t i = 0; i < T; ++i)
                gram[a * d + b] += centred[i * d + a] * centred[i * d + b];
        }
    }
    std::vector<double> singular;
    for (double v : symmetric_eigenvalues(gram, d)) singular.push_back(std::sqrt(std::max(v, 0.0)));
    m.effective_rank = rank_from_singular_values(singular, norm_c, norm_x);

    std::vector<double> dist(T * T, 0.0), pairs;
    for (int64_t i = 0; i < T; ++i) {
        for (int64_t j = 0; j < T; ++j) {
            double s = 0;
            for (int64_t k = 0; k < d; ++k) s += (row(i)[k] - row(j)[k]) * (row(i)[k] - row(j)[k]);
            dist[i * T + j] = std::sqrt(s);
            if (j > i) pairs.push_back(dist[i * T + j]);
        }
    }
    std::sort(pairs.begin(), pairs.end());
    m.median_distance = pairs[(pairs.size() - 1) / 2];
    for (double f : fractions) {
        std::vector<int64_t> parent(T);
        std::iota(parent.begin(), parent.end(), 0);
        for (int64_t i = 0; i < T; ++i) {
            for (int64_t j = i + 1; j < T; ++j) {
                if (dist[i * T + j] <= f * m.median_distance) {
                    parent[find_root(parent, i)] = find_root(parent, j);
                }
            }
        }
        int64_t roots = 0;
        for (int64_t i = 0; i < T; ++i) roots += find_root(parent, i) == i;
        m.clusters.push_back(static_cast<double>(roots));
    }
    return m;
}

}  // namespace krause
