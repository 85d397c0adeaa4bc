// Token dynamics of a model: the residual stream of each image measured layer by layer, and one
// image's states projected to the plane for display.
#include "model/dynamics.h"

#include "model/probe.h"

#include <torch/nn/module.h>

namespace krause {
namespace {

void add_scaled(StateMeasures& sum, const StateMeasures& m, double w) {
    sum.cosine += w * m.cosine;
    sum.consensus += w * m.consensus;
    sum.effective_rank += w * m.effective_rank;
    sum.median_distance += w * m.median_distance;
    sum.clusters.resize(m.clusters.size(), 0.0);
    for (size_t i = 0; i < m.clusters.size(); ++i) sum.clusters[i] += w * m.clusters[i];
}

void add_scaled(LayerMeasures& sum, const LayerMeasures& m, double w) {
    sum.sink_mass += w * m.sink_mass;
    sum.oldest_key += w * m.oldest_key;
    sum.max_weight += w * m.max_weight;
    sum.entropy += w * m.entropy;
    sum.keys_for_90 += w * m.keys_for_90;
}

// Restores the module's training mode when the measures end, also by an exception.
class EvalMode {
public:
    explicit EvalMode(PixelTransformer& model)
        : model_(model), was_training_(model->is_training()) {
        model_->eval();
    }
    ~EvalMode() {
        if (was_training_) model_->train();
    }

private:
    PixelTransformer& model_;
    bool was_training_;
};

at::Tensor network_inputs(const PixelTransformer& model, const at::Tensor& images) {
    const int64_t T = model->config().seq_len();
    return images.narrow(1, 0, T - 1).to(model->pos_emb.device()).to(at::kLong);
}

}  // namespace

std::vector<at::Tensor> residual_stream(PixelTransformer& model, const at::Tensor& tokens) {
    const int64_t S = tokens.size(1);
    TORCH_CHECK(tokens.dim() == 2 && S >= 1 && S <= model->config().seq_len() - 1,
                "residual_stream: tokens must be (B, S) with 1 <= S < T, got ", tokens.sizes());
    auto h = model->tok_emb->forward(tokens.to(at::kLong)) + model->pos_emb.narrow(0, 0, S);
    if (model->emb_drop) h = model->emb_drop->forward(h);
    std::vector<at::Tensor> states{h};  // (B, S, d) each
    for (size_t i = 0; i < model->blocks->size(); ++i) {
        states.push_back(model->blocks->ptr<BlockImpl>(i)->forward(states.back()));
    }
    return states;
}

DynamicsMeasures token_dynamics(PixelTransformer& model, const at::Tensor& images,
                                const DynamicsOptions& options) {
    const auto& config = model->config();
    const int64_t T = config.seq_len();
    TORCH_CHECK(images.dim() == 2 && images.size(1) == T && images.size(0) >= 1,
                "token_dynamics: images must be (N, ", T, "), got ", images.sizes());
    TORCH_CHECK(options.batch_size >= 1, "token_dynamics: batch_size must be >= 1");
    torch::NoGradGuard no_grad;
    EvalMode eval(model);
    const int64_t N = images.size(0);
    DynamicsMeasures out;
    out.eps_fractions = options.eps_fractions;
    out.states.resize(config.n_layers + 1);
    out.attention.resize(config.n_layers);
    for (auto& s : out.states) s.clusters.assign(options.eps_fractions.size(), 0.0);

    for (int64_t begin = 0; begin < N; begin += options.batch_size) {
        if (options.stop && options.stop->load()) break;
        const int64_t len = std::min(options.batch_size, N - begin);
        const auto batch = images.narrow(0, begin, len);
        const auto states = residual_stream(model, network_inputs(model, batch));  // (B, S, d)
        for (size_t l = 0; l < states.size(); ++l) {
            for (int64_t b = 0; b < len; ++b) {
                add_scaled(out.states[l], state_measures(states[l][b], options.eps_fractions), 1.0);
            }
        }
        const auto attention = attention_measures(model, batch);
        for (size_t l = 0; l < attention.size(); ++l) {
            add_scaled(out.attention[l], attention[l], static_cast<double>(len));
        }
        out.images += len;
        if (options.progress) options.progress(out.images, N);
    }
    if (out.images > 0) {
        const double w = 1.0 / static_cast<double>(out.images);
        for (auto& s : out.states) {
            StateMeasures mean;
            add_scaled(mean, s, w);
            s = std::move(mean);
        }
        for (auto& a : out.attention) {
            LayerMeasures mean;
            add_scaled(mean, a, w);
            a = mean;
        }
    }
    return out;
}

Particles project_particles(PixelTransformer& model, const at::Tensor& image) {
    const auto& config = model->config();
    const int64_t T = config.seq_len();
    TORCH_CHECK(image.numel() == T, "project_particles: the image must have ", T, " tokens, got ",
                image.numel());
    torch::NoGradGuard no_grad;
    EvalMode eval(model);
    const auto tokens = network_inputs(model, image.reshape({1, T}));  // (1, S)
    const auto stream = residual_stream(model, tokens);
    const auto states = at::stack(stream).squeeze(1).to(at::kCPU).to(at::kDouble);  // (L+1, S, d)
    const int64_t layers = states.size(0), S = states.size(1), d = states.size(2);

    // One PCA over every layer's states together, so that a token's position is comparable
    // across depth.
    const auto flat = states.reshape({layers * S, d});
    const auto centred = flat - flat.mean(0, true);
    const auto cov = centred.t().mm(centred) / static_cast<double>(layers * S);  // (d, d)
    const auto eig = at::linalg_eigh(cov);
    const auto values = std::get<0>(eig).clamp_min(0);                   // ascending
    auto axes = std::get<1>(eig).narrow(1, d - 2, 2).flip({1}).clone();  // (d, 2), largest first
    for (int64_t a = 0; a < 2; ++a) {
        // An eigenvector's sign is arbitrary; fix it so runs and models compare.
        auto column = axes.select(1, a);
        if (column.index_select(0, column.abs().argmax().view({1})).item<double>() < 0) {
            column.neg_();
        }
    }
    const auto xy = centred.mm(axes).to(at::kFloat).contiguous();  // (L+1 * S, 2)
    const double total = values.sum().item<double>();

    Particles p;
    p.layers = layers;
    p.tokens = S;
    p.height = config.image_height;
    p.width = config.image_width;
    p.channels = config.image_channels;
    p.xy.assign(xy.data_ptr<float>(), xy.data_ptr<float>() + xy.numel());
    const auto inputs = tokens.to(at::kCPU).to(at::kByte).contiguous();
    p.inputs.assign(inputs.data_ptr<uint8_t>(), inputs.data_ptr<uint8_t>() + inputs.numel());
    p.explained = total > 0 ? values.narrow(0, d - 2, 2).sum().item<double>() / total : 0.0;
    return p;
}

}  // namespace krause
