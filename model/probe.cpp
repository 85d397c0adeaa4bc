// Attention probes over captured queries and keys, in blocks of queries to bound memory.
#include "model/probe.h"

#include <torch/nn/module.h>

#include <stdexcept>

namespace krause {
namespace {

constexpr int64_t kQueryBlock = 256;

// Sums of the measures over the queries of weights w (B, H, Q, S) at positions q_begin + a.
struct MeasureSums {
    double sink = 0, oldest = 0, max_w = 0, entropy = 0, keys90 = 0;
    int64_t count = 0;

    void add(const at::Tensor& w, int64_t q_begin, int64_t window) {
        const int64_t Q = w.size(2), S = w.size(3);
        const auto opts = w.options().dtype(at::kLong);
        const auto pos = at::arange(q_begin, q_begin + Q, opts);         // (Q)
        const auto counted = pos.ge(1).to(at::kFloat).view({1, 1, Q});   // queries p >= 1
        const int64_t n = w.size(0) * w.size(1) * pos.ge(1).sum().item<int64_t>();
        if (n == 0) return;
        const auto oldest_idx = (pos - (window - 1)).clamp_min(0).view({1, 1, Q, 1})
                                    .expand({w.size(0), w.size(1), Q, 1});
        const auto sorted = std::get<0>(w.sort(-1, /*descending=*/true));
        const auto reached = at::cumsum(sorted, -1).lt(0.9).sum(-1).add(1).clamp_max(S);
        const auto plogp = at::where(w.gt(0), w * w.clamp_min(1e-30).log(), at::zeros_like(w));
        sink += (w.select(-1, 0) * counted).sum().item<double>();
        oldest += (w.gather(-1, oldest_idx).squeeze(-1) * counted).sum().item<double>();
        max_w += (sorted.select(-1, 0) * counted).sum().item<double>();
        entropy += (-plogp.sum(-1) * counted).sum().item<double>();
        keys90 += (reached.to(at::kFloat) * counted).sum().item<double>();
        count += n;
    }

    LayerMeasures mean() const {
        LayerMeasures m;
        if (count == 0) return m;
        m.sink_mass = sink / count;
        m.oldest_key = oldest / count;
        m.max_weight = max_w / count;
        m.entropy = entropy / count;
        m.keys_for_90 = keys90 / count;
        return m;
    }
};

int64_t effective_window(const ModelConfig& c) {
    return c.attention == AttentionKind::Krause ? c.window : c.seq_len();
}

// Measures over every query of the captured (q, k) of one layer.
LayerMeasures measure_layer(const AttentionImpl& attn, const at::Tensor& q, const at::Tensor& k,
                            int64_t window) {
    MeasureSums sums;
    const int64_t S = q.size(2);
    for (int64_t begin = 0; begin < S; begin += kQueryBlock) {
        const int64_t len = std::min(kQueryBlock, S - begin);
        sums.add(attn.weights(q.narrow(2, begin, len), k, begin), begin, window);
    }
    return sums.mean();
}

}  // namespace

ProbeResult probe_attention(PixelTransformer& model, const at::Tensor& image,
                            const std::vector<int64_t>& query_positions, bool image_measures) {
    const auto& config = model->config();
    const int64_t T = config.seq_len();
    if (image.numel() != T) {
        throw std::invalid_argument("probe: image must have " + std::to_string(T) + " tokens");
    }
    for (int64_t p : query_positions) {
        if (p < 0 || p > T - 2) {
            throw std::invalid_argument("probe: query position " + std::to_string(p) +
                                        " outside 0.." + std::to_string(T - 2));
        }
    }
    torch::NoGradGuard no_grad;
    const bool was_training = model->is_training();
    model->eval();
    const auto device = model->pos_emb.device();
    const auto tokens = image.reshape({1, T}).narrow(1, 0, T - 1).to(device).to(at::kLong);
    const auto captured = model->capture_queries_keys(tokens);
    if (was_training) model->train();

    ProbeResult result;
    result.n_layers = config.n_layers;
    result.n_heads = config.n_heads;
    result.window = effective_window(config);
    result.queries.resize(query_positions.size());
    std::vector<MeasureSums> at_queries(config.n_layers);

    for (int64_t l = 0; l < config.n_layers; ++l) {
        const auto& attn = *model->blocks->ptr<BlockImpl>(l)->attn;
        const auto& [q, k] = captured[l];
        for (size_t qi = 0; qi < query_positions.size(); ++qi) {
            const int64_t p = query_positions[qi];
            at::Tensor attended;
            const auto w = attn.weights(q.narrow(2, p, 1), k, p, &attended);  // (1, H, 1, p + 1)
            at_queries[l].add(w, p, result.window);
            const auto w_cpu = w.to(at::kCPU).contiguous().view({config.n_heads, p + 1});
            const auto mask_cpu =
                attended.to(at::kCPU).contiguous().view({config.n_heads, p + 1});
            auto& out = result.queries[qi];
            out.position = p;
            out.weights.resize(config.n_layers);
            out.selected.resize(config.n_layers);
            for (int64_t h = 0; h < config.n_heads; ++h) {
                const float* row = w_cpu[h].data_ptr<float>();
                const bool* mask = mask_cpu[h].data_ptr<bool>();
                out.weights[l].emplace_back(row, row + p + 1);
                std::vector<int32_t> keys;
                for (int64_t j = 0; j <= p; ++j) {
                    if (mask[j]) keys.push_back(static_cast<int32_t>(j));
                }
                out.selected[l].push_back(std::move(keys));
            }
        }
        result.at_queries.push_back(at_queries[l].mean());
        if (image_measures) result.over_image.push_back(measure_layer(attn, q, k, result.window));
    }
    return result;
}

std::vector<LayerMeasures> attention_measures(PixelTransformer& model, const at::Tensor& images) {
    const auto& config = model->config();
    const int64_t T = config.seq_len();
    if (images.dim() != 2 || images.size(1) != T) {
        throw std::invalid_argument("attention_measures: images must be (B, " +
                                    std::to_string(T) + ")");
    }
    torch::NoGradGuard no_grad;
    const bool was_training = model->is_training();
    model->eval();
    const auto tokens = images.narrow(1, 0, T - 1).to(model->pos_emb.device()).to(at::kLong);
    const auto captured = model->capture_queries_keys(tokens);
    if (was_training) model->train();
    std::vector<LayerMeasures> out;
    for (int64_t l = 0; l < config.n_layers; ++l) {
        const auto& attn = *model->blocks->ptr<BlockImpl>(l)->attn;
        out.push_back(measure_layer(attn, captured[l].first, captured[l].second,
                                    effective_window(config)));
    }
    return out;
}

}  // namespace krause
