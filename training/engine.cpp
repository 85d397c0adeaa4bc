// The front-end facade: model handles and the sample, inspect, evaluate and train jobs.
#include "training/engine.h"

#include "model/checkpoint.h"
#include "model/probe.h"
#include "model/sampler.h"
#include "data/dataset.h"
#include "training/bundled_models.h"
#include "training/evaluate.h"
#include "training/model_handle.h"
#include "training/trainer.h"

#include <torch/nn/module.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <unistd.h>

namespace krause {

class ModelHandle {
public:
    ModelHandle(std::string path, LoadedCheckpoint ck)
        : path_(std::move(path)), model_(ck.model), metadata_(std::move(ck.metadata)) {}

    // A private copy of the weights on `device`, so jobs never share module state (modes, probe
    // captures).
    PixelTransformer copy(at::Device device = at::Device(at::kCPU)) const {
        std::lock_guard<std::mutex> lock(mutex_);
        return copy_model(model_, device, model_->pos_emb.scalar_type());
    }
    ModelSummary summary() const {
        std::lock_guard<std::mutex> lock(mutex_);
        const auto& c = model_->config();
        ModelSummary s;
        s.path = path_;
        s.attention = to_string(c.attention);
        s.image_height = c.image_height;
        s.image_width = c.image_width;
        s.image_channels = c.image_channels;
        s.d_model = c.d_model;
        s.n_heads = c.n_heads;
        s.n_layers = c.n_layers;
        s.window = c.window;
        s.top_k = c.top_k;
        s.parameters = model_->parameter_count();
        s.config_json = c.to_json();
        const auto step = metadata_.find("step");
        if (step != metadata_.end()) s.step = std::atoll(step->second.c_str());
        const auto data = metadata_.find("dataset");
        if (data != metadata_.end()) s.dataset = data->second;
        return s;
    }

private:
    std::string path_;
    mutable std::mutex mutex_;
    PixelTransformer model_;
    Metadata metadata_;
};

PixelTransformer copy_weights(const ModelHandle& handle, at::Device device) {
    return handle.copy(device);
}

std::shared_ptr<ModelHandle> open_model(const std::string& path) {
    try {
        return std::make_shared<ModelHandle>(path, load_checkpoint(path));
    } catch (const CheckpointError& e) {
        throw std::runtime_error(e.what());
    }
}

ModelSummary summarize(const ModelHandle& model) { return model.summary(); }

std::string bundled_model_path() {
    const auto models = bundled_models();
    return models.empty() ? std::string() : models.front().path;
}

namespace {

Images images_from(const at::Tensor& tokens, const ModelConfig& c, int64_t filled) {
    Images out;
    out.count = tokens.size(0);
    out.height = c.image_height;
    out.width = c.image_width;
    out.channels = c.image_channels;
    out.filled = filled;
    const auto cpu = tokens.to(at::kCPU).to(at::kByte).contiguous();
    out.tokens.assign(cpu.data_ptr<uint8_t>(), cpu.data_ptr<uint8_t>() + cpu.numel());
    return out;
}

}  // namespace

std::unique_ptr<Job<SampleSnapshot>> start_sampling(std::shared_ptr<ModelHandle> handle,
                                                    SampleRequest request) {
    if (!handle) throw std::invalid_argument("no model is open");
    return std::make_unique<Job<SampleSnapshot>>([handle, request](JobContext<SampleSnapshot>& job) {
        auto model = handle->copy(pick_device(request.device));
        const auto& c = model->config();
        const int64_t T = c.seq_len();
        SampleOptions options;
        options.count = request.count;
        options.temperature = request.temperature;
        options.seed = request.seed;
        options.stop = &job.stop_flag();
        options.precision = parse_sample_precision(request.precision);
        // A paced display needs every token reported as it comes and a stop within one token:
        // the host loop (fp8 rings excepted, which it cannot read). The GPU's replayed loops
        // run ahead and report about every 40 ms.
        if (request.max_tokens_per_s > 0 && options.precision != SamplePrecision::Float8) {
            options.loop = DecodeLoop::Host;
        }
        if (request.prefix_len > 0) {
            const auto n = static_cast<int64_t>(request.prefix.size());
            if (n != request.prefix_len && n != request.prefix_len * request.count) {
                throw std::invalid_argument("prompt has " + std::to_string(n) +
                                            " tokens, expected prefix_len or count * prefix_len");
            }
            auto prefix = at::tensor(std::vector<int64_t>(request.prefix.begin(),
                                                          request.prefix.end()), at::kLong);
            options.prefix = n == request.prefix_len ? prefix
                                                     : prefix.view({request.count, request.prefix_len});
        }
        const auto start = std::chrono::steady_clock::now();
        int64_t published = 0;
        double published_at = -1e9;
        options.on_token = [&](int64_t filled, const at::Tensor& tokens) {
            const double elapsed =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            if (request.max_tokens_per_s > 0) {
                const double due = filled / request.max_tokens_per_s;
                if (due > elapsed) {
                    std::this_thread::sleep_for(std::chrono::duration<double>(due - elapsed));
                }
            }
            const bool due = filled - published >= std::max<int64_t>(1, request.publish_every) &&
                             elapsed - published_at >= request.publish_interval_s;
            if (!due && filled != T) return;
            published = filled;
            published_at = elapsed;
            SampleSnapshot snap;
            snap.images = images_from(tokens, c, filled);
            const double rate = filled / std::max(elapsed, 1e-9);
            snap.progress = {filled, T, rate, rate > 0 ? (T - filled) / rate : 0, "tokens"};
            job.publish(std::move(snap));
        };
        sample(model, options);
    });
}

std::unique_ptr<Job<InspectSnapshot>> start_inspect(std::shared_ptr<ModelHandle> handle,
                                                    InspectRequest request) {
    if (!handle) throw std::invalid_argument("no model is open");
    return std::make_unique<Job<InspectSnapshot>>([handle, request](JobContext<InspectSnapshot>& job) {
        auto model = handle->copy();
        const int64_t T = model->config().seq_len();
        if (static_cast<int64_t>(request.image.size()) != T) {
            throw std::invalid_argument("the image has " + std::to_string(request.image.size()) +
                                        " sub-pixels; this model works on " + std::to_string(T));
        }
        std::vector<int64_t> queries;
        for (int64_t i : request.sub_pixels) {
            if (i < 1 || i >= T) {
                throw std::invalid_argument("sub-pixel " + std::to_string(i) +
                                            " has no attention to show (pick one in 1.." +
                                            std::to_string(T - 1) + ")");
            }
            queries.push_back(i - 1);
        }
        const auto image =
            at::tensor(std::vector<int64_t>(request.image.begin(), request.image.end()), at::kLong);
        InspectSnapshot snap;
        snap.result = probe_attention(model, image, queries, request.image_measures);
        if (!queries.empty()) {
            // One pass over the prefix up to the last query gives every query's prediction.
            torch::NoGradGuard no_grad;
            model->eval();
            const int64_t last = *std::max_element(queries.begin(), queries.end());
            const auto logits = model->forward(image.narrow(0, 0, last + 1).view({1, last + 1}));
            const auto probs = at::softmax(logits[0].to(at::kFloat), -1).contiguous();  // (S, 256)
            for (int64_t p : queries) {
                const float* row = probs[p].data_ptr<float>();
                snap.next_probs.emplace_back(row, row + probs.size(1));
            }
        }
        snap.ready = true;
        job.publish(std::move(snap));
    });
}

std::unique_ptr<Job<EvalSnapshot>> start_eval(std::shared_ptr<ModelHandle> handle,
                                              EvalRequest request) {
    if (!handle) throw std::invalid_argument("no model is open");
    return std::make_unique<Job<EvalSnapshot>>([handle, request](JobContext<EvalSnapshot>& job) {
        auto model = handle->copy(pick_device(request.device));
        Split split;
        if (request.split == "test") split = Split::Test;
        else if (request.split == "train") split = Split::Train;
        else throw std::invalid_argument("unknown split '" + request.split + "' (test or train)");
        const auto data = load_dataset(parse_dataset_spec(request.data), split, request.limit);
        const auto& c = model->config();
        if (data.height != c.image_height || data.width != c.image_width ||
            data.channels != c.image_channels) {
            throw std::invalid_argument("data set " + request.data +
                                        " does not have this model's image shape");
        }
        const auto start = std::chrono::steady_clock::now();
        EvalSnapshot snap;
        snap.result = evaluate_bpd(
            model, images_tensor(data), request.batch_size,
            [&](int64_t done, int64_t total) {
                const double t = std::chrono::duration<double>(
                                     std::chrono::steady_clock::now() - start).count();
                const double rate = done / std::max(t, 1e-9);
                EvalSnapshot s;
                s.progress = {done, total, rate, (total - done) / std::max(rate, 1e-9), "images"};
                job.publish(std::move(s));
            },
            &job.stop_flag());
        const double rate = snap.result.seconds > 0 ? snap.result.images / snap.result.seconds : 0;
        snap.progress = {snap.result.images, data.size(), rate, 0, "images"};
        snap.done = true;
        job.publish(std::move(snap));
    });
}

std::unique_ptr<Job<TrainSnapshot>> start_training(TrainConfig config) {
    config.validate();
    return std::make_unique<Job<TrainSnapshot>>(
        [config](JobContext<TrainSnapshot>& job) { run_training(config, job); });
}

}  // namespace krause
