// krause bench: training, forward, sampling and attention-op speed of the presets, as medians of
// repeated timed runs after warm-up (CUDA events on a GPU), printed as a table or one JSON object.
#include "app/commands.h"
#include "app/bench_util.h"
#include "model/attention.h"
#include "model/checkpoint.h"
#include "model/kernel_check.h"
#include "model/kernels.h"
#include "model/sampler.h"
#include "training/autocast.h"
#include "training/evaluate.h"
#include "training/optimizer.h"
#include "training/threads.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/nn/module.h>
#include <torch/utils.h>
#include <torch/version.h>

#include <algorithm>
#include <memory>
#include <sstream>

namespace krause::cli {
namespace {

struct BenchOptions {
    std::string presets;  // empty: mnist,cifar10 on a GPU, mnist-small on the CPU
    std::string attentions = "krause,krause-ref,softmax,linear,sdpa,flash-window";
    std::string what = "train,forward,sample,op";
    std::string device = "auto";
    int64_t train_batch = 0;   // 0: 64 for mnist, 32 for cifar10 (8 on a CPU)
    int64_t sample_batch = 0;  // 0: 2000 / 200 on a GPU, 8 on a CPU
    int64_t sample_tokens = 0; // 0: whole images; else time this many and extrapolate
    // The first gives a row's sample_images_per_s; each further one its own
    // sample_<name>_images_per_s where it applies (fp8 rings: Krause attention on a GPU).
    std::string sample_precision = "auto,fp8";
    std::string sample_loop = "auto";
    int64_t op_batch = 32;
    int64_t op_window = 0;  // 0: the preset's W
    int64_t op_top_k = 0;   // 0: the preset's K
    int repeats = 5, warmup = 2;
    int threads = 0;
    std::string tensor_cores = "on";  // bf16 Krause kernels on tensor cores
    std::string cpu_avx2 = "on";      // the CPU loops' AVX2 copy where the CPU has it
    int decode_warps = 0;             // warps per query of the Krause decode kernel, 0: automatic
    bool json = false;

    // The kernels a row runs; krause-ref rows take the ATen path of Krause attention.
    KernelOptions kernels(bool reference = false) const {
        KernelOptions k;
        k.fused_attention = !reference;
        k.tensor_cores = tensor_cores == "on";
        k.cpu_avx2 = cpu_avx2 == "on";
        k.decode_warps = decode_warps;
        return k;
    }
};

// Yardsticks of the op benchmark only: PyTorch's own attention kernels.
bool yardstick(const std::string& attention) {
    return attention == "sdpa" || attention == "flash-window";
}

std::vector<std::string> split_list(const std::string& text) {
    std::vector<std::string> out;
    std::stringstream ss(text);
    std::string item;
    while (std::getline(ss, item, ',')) {
        if (!item.empty()) out.push_back(item);
    }
    return out;
}

bool has(const std::string& list, const std::string& item) {
    for (const auto& x : split_list(list)) {
        if (x == item) return true;
    }
    return false;
}

// Every name is checked before anything runs: a typo must not bench nothing (or half) and exit 0.
void check_names(const std::string& option, const std::string& list,
                 const std::vector<std::string>& known) {
    std::string names;
    for (const auto& k : known) names += (names.empty() ? "" : ", ") + k;
    const auto items = split_list(list);
    if (items.empty()) throw UsageError(option + " is empty", "use one or more of " + names);
    for (const auto& item : items) {
        if (std::find(known.begin(), known.end(), item) == known.end()) {
            throw UsageError("unknown '" + item + "' in " + option, "use " + names);
        }
    }
}

// Validate before timing: the fused kernels' results on the bench's own inputs must meet the
// tests' tolerance rule against the ATen reference, or the kernel is not timed. Returns the
// measured errors for the results; empty where there are no fused kernels to check.
std::string validate_or_refuse(const std::vector<KernelCheck>& checks) {
    for (const auto& c : checks) {
        if (!c.ok()) {
            throw std::runtime_error("the fused Krause kernels disagree with the reference on the "
                                     "bench's inputs (" + describe(checks) + "); not timed");
        }
    }
    return describe(checks);
}

// The fused Krause kernels at a preset's shape, two images: forward and backward, and one
// decoding step after the ring has wrapped.
std::string validate_krause(const ModelConfig& config, const at::Device& device,
                            const KernelOptions& kernels) {
    if (!device.is_cuda()) return "";
    const int64_t B = 2, H = config.n_heads, T = config.seq_len(), D = config.head_dim();
    const auto opts = at::TensorOptions().device(device).dtype(at::kBFloat16);
    const auto log_sigma = at::full({H}, std::log(config.init_sigma), opts.dtype(at::kFloat));
    auto checks = check_krause_fused(at::randn({B, H, T, D}, opts), at::randn({B, H, T, D}, opts),
                                     at::randn({B, H, T, D}, opts), log_sigma,
                                     at::randn({B, H, T, D}, opts), config.window, config.top_k,
                                     kernels);
    const auto decode = check_krause_decode(
        at::randn({B, H, 1, D}, opts), at::randn({B, H, config.window, D}, opts),
        at::randn({B, H, config.window, D}, opts), 3 * config.window - 1, log_sigma,
        config.top_k, kernels);
    if (checks.empty() && decode.empty()) return "";
    checks.insert(checks.end(), decode.begin(), decode.end());
    return validate_or_refuse(checks);
}

nlohmann::json bench_model(const BenchOptions& o, const std::string& preset_name,
                           const std::string& attention, const at::Device& device) {
    const bool cuda = device.is_cuda();
    const bool reference = attention == "krause-ref";
    const auto kernels = o.kernels(reference);
    auto config = preset(preset_name, parse_attention_kind(reference ? "krause" : attention));
    const int64_t T = config.seq_len();
    torch::manual_seed(0);
    PixelTransformer model(config);
    model->set_kernels(kernels);
    model->to(device);
    nlohmann::json row = {{"preset", preset_name}, {"attention", attention},
                          {"parameters", model->parameter_count()}};
    if (attention == "krause") {
        const auto errors = validate_krause(config, device, kernels);
        if (!errors.empty()) row["validated"] = errors;
    }
    const int64_t big = preset_name == "mnist" ? 64 : 32;
    const int64_t B = o.train_batch > 0 ? o.train_batch : (cuda ? big : 8);
    const auto images =
        at::randint(0, 256, {B, T}, at::TensorOptions().device(device).dtype(at::kLong));
    const double flops = training_flops_per_image(config);
    row["train_flops_per_image"] = flops;

    if (has(o.what, "forward")) {
        torch::NoGradGuard no_grad;
        model->eval();
        const auto t = median_ms(o.repeats, o.warmup, cuda, [&] {
            CudaAutocast cast(cuda);
            model->forward(images.narrow(1, 0, T - 1));
        });
        row["forward_batch"] = B;
        row["forward_ms"] = t;
        row["forward_images_per_s"] = B / (t / 1000.0);
    }
    if (has(o.what, "train")) {
        model->train();
        std::vector<at::Tensor> params;
        for (auto& [name, p] : model_tensors(model)) params.push_back(p);
        FlatAdamW optimizer(params);
        reset_peak_memory(device);
        const auto t = median_ms(o.repeats, o.warmup, cuda, [&] {
            optimizer.zero_grad();
            at::Tensor loss;
            {
                CudaAutocast cast(cuda);
                loss = model->token_nll(images).mean();
            }
            loss.backward();
            optimizer.clip_grad_norm(1.0);
            optimizer.step(1e-4, 0.01);
        });
        row["train_batch"] = B;
        row["train_step_ms"] = t;
        row["train_images_per_s"] = B / (t / 1000.0);
        if (device.is_cuda()) row["train_peak_gib"] = peak_memory_gib(device);  // GPU only
        const double peak = peak_bf16_flops(device);
        if (peak > 0) row["train_mfu"] = flops * B / (t / 1000.0) / peak;
    }
    if (has(o.what, "sample")) {
        const int64_t n = o.sample_batch > 0 ? o.sample_batch
                                             : (cuda ? (preset_name == "mnist" ? 2000 : 200) : 8);
        const int64_t tokens = o.sample_tokens > 0 ? std::min(o.sample_tokens, T) : T;
        auto images_per_s = [&](const std::string& precision) {
            SampleOptions so;
            so.count = n;
            so.until = tokens;
            so.precision = parse_sample_precision(precision);
            so.loop = parse_decode_loop(o.sample_loop);
            // Sampling is long: half as many timed runs, no warm-up (each run captures its own
            // graph).
            const auto t =
                median_ms(std::max(1, o.repeats / 2), 0, cuda, [&] { sample(model, so); });
            return n / (t / 1000.0 * static_cast<double>(T) / tokens);
        };
        const auto precisions = split_list(o.sample_precision);
        row["sample_batch"] = n;
        row["sample_precision"] = precisions.front();
        row["sample_loop"] = o.sample_loop;
        row["sample_tokens_timed"] = tokens;
        row["sample_images_per_s"] = images_per_s(precisions.front());
        row["sample_extrapolated"] = tokens < T;
        // fp8 rings exist where the fused decode kernel runs Krause attention.
        const bool fp8_rings = config.attention == AttentionKind::Krause &&
                               krause_decode_fused(kernels, model->pos_emb);
        for (size_t i = 1; i < precisions.size(); ++i) {
            const auto& precision = precisions[i];
            if (precision == "fp8" && !fp8_rings) continue;
            row["sample_" + precision + "_images_per_s"] = images_per_s(precision);
        }
    }
    return row;
}

#if TORCH_VERSION_MAJOR >= 2
// A call of PyTorch's flash attention (aten::_flash_attention_forward) resolved once: the operator
// and its arguments by the schema's names (its defaults, the fixed choices), with the slots that
// change from call to call marked.
struct FlashCall {
    c10::OperatorHandle op;
    torch::jit::Stack args;
    size_t query = 0, key = 0, value = 0, max_q = 0, max_k = 0, window_left = 0;
};

FlashCall resolve_flash_call() {
    const auto op = c10::Dispatcher::singleton().findSchema({"aten::_flash_attention_forward", ""});
    if (!op) throw std::runtime_error("this LibTorch has no flash attention");
    FlashCall call{*op, {}};
    std::vector<std::pair<const char*, size_t*>> slots = {
        {"query", &call.query}, {"key", &call.key},     {"value", &call.value},
        {"max_q", &call.max_q}, {"max_k", &call.max_k}, {"window_size_left", &call.window_left}};
    const std::vector<std::pair<const char*, c10::IValue>> fixed = {
        {"dropout_p", 0.0}, {"is_causal", true}, {"return_debug_mask", false},
        {"window_size_right", int64_t{0}}};
    size_t found = 0;
    for (const auto& arg : op->schema().arguments()) {
        const size_t at = call.args.size();
        call.args.emplace_back();  // None: the optional cumulative lengths, one batch of T
        bool named = false;
        for (auto& [name, slot] : slots) {
            if (arg.name() == name) {
                *slot = at;
                named = true;
            }
        }
        for (const auto& [name, value] : fixed) {
            if (arg.name() == name) {
                call.args[at] = value;
                named = true;
            }
        }
        if (named) {
            ++found;
        } else if (arg.default_value()) {
            call.args[at] = *arg.default_value();
        }
    }
    if (found != slots.size() + fixed.size()) {
        throw std::runtime_error("this LibTorch's flash attention takes no sliding window");
    }
    return call;
}
#endif

// PyTorch's flash attention over a sliding window of the last W keys (window_size_left = W - 1),
// the floor for any windowed attention: it reads the same band of keys with nothing to select.
// Called through the dispatcher by its schema's argument names, so that any LibTorch whose flash
// attention takes a window runs it (LibTorch 2.5 and newer) and the others say so.
at::Tensor windowed_flash_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                    int64_t window) {
#if TORCH_VERSION_MAJOR >= 2
    static const FlashCall call = resolve_flash_call();
    torch::jit::Stack stack = call.args;
    // (B, H, T, D) -> (B, T, H, D), the layout flash attention reads (its last dim contiguous).
    stack[call.query] = q.transpose(1, 2);
    stack[call.key] = k.transpose(1, 2);
    stack[call.value] = v.transpose(1, 2);
    stack[call.max_q] = q.size(2);
    stack[call.max_k] = q.size(2);
    stack[call.window_left] = window - 1;
    call.op.callBoxed(&stack);
    return stack[0].toTensor().transpose(1, 2);
#else
    (void)q, (void)k, (void)v, (void)window;
    throw std::runtime_error("flash-window needs LibTorch 2.5 or newer");
#endif
}

// The op's output for the inputs: the Krause kernels (or their ATen path), the plain attentions,
// or a yardstick: PyTorch's fused causal attention over the whole context ("sdpa", LibTorch 2)
// or its flash attention over the window ("flash-window").
at::Tensor attend(const std::string& attention, const ModelConfig& config, const at::Tensor& q,
                  const at::Tensor& k, const at::Tensor& v, const at::Tensor& log_sigma,
                  const KernelOptions& kernels) {
    if (attention == "krause" || attention == "krause-ref") {
        return krause_attention(q, k, v, log_sigma, config.window, config.top_k, kernels);
    }
    if (attention == "flash-window") return windowed_flash_attention(q, k, v, config.window);
    if (attention == "softmax") return softmax_attention(q, k, v);
    if (attention == "sdpa") {
#if TORCH_VERSION_MAJOR >= 2
        return at::scaled_dot_product_attention(q, k, v, {}, 0.0, /*is_causal=*/true);
#else
        throw std::runtime_error("sdpa needs LibTorch 2.0 or newer");
#endif
    }
    return linear_attention(q, k, v);
}

// The attention op alone at the preset's length and head size: forward, and forward + backward.
nlohmann::json bench_op(const BenchOptions& o, const std::string& preset_name,
                        const std::string& attention, const at::Device& device) {
    const bool cuda = device.is_cuda();
    auto config = preset(preset_name);
    if (o.op_window > 0) config.window = o.op_window;
    if (o.op_top_k > 0) config.top_k = o.op_top_k;
    config.validate();
    const int64_t B = o.op_batch, H = config.n_heads, T = config.seq_len(), D = config.head_dim();
    const auto dtype = cuda ? at::kBFloat16 : at::kFloat;
    const auto opts = at::TensorOptions().device(device).dtype(dtype);
    auto q = at::randn({B, H, T, D}, opts).requires_grad_(true);
    auto k = at::randn({B, H, T, D}, opts).requires_grad_(true);
    auto v = at::randn({B, H, T, D}, opts).requires_grad_(true);
    auto log_sigma = at::full({H}, std::log(2.5), opts.dtype(at::kFloat)).requires_grad_(true);
    const auto dout = at::randn({B, H, T, D}, opts);
    const auto kernels = o.kernels(attention == "krause-ref");
    std::string validated;
    if (attention == "krause") {
        // The op's own inputs, its first images (the fp64 reference of all 32 is large).
        auto first = [&](const at::Tensor& t) {
            return t.detach().narrow(0, 0, std::min<int64_t>(B, 4));
        };
        const auto checks = check_krause_fused(first(q), first(k), first(v), log_sigma.detach(),
                                               first(dout), config.window, config.top_k, kernels);
        if (!checks.empty()) validated = validate_or_refuse(checks);
    }
    const auto fwd = median_ms(o.repeats, o.warmup, cuda, [&] {
        torch::NoGradGuard no_grad;
        attend(attention, config, q, k, v, log_sigma, kernels);
    });
    reset_peak_memory(device);
    const auto forward_backward = [&] {
        const auto out = attend(attention, config, q, k, v, log_sigma, kernels);
        torch::autograd::grad({out}, {q, k, v}, {dout});
    };
    const auto fwd_bwd = median_ms(o.repeats, o.warmup, cuda, forward_backward);
    nlohmann::json row = {{"preset", preset_name}, {"attention", attention}, {"B", B},
                          {"H", H}, {"T", T}, {"D", D}, {"W", config.window},
                          {"K", config.top_k}, {"dtype", cuda ? "bf16" : "fp32"},
                          {"fwd_ms", fwd}, {"fwd_bwd_ms", fwd_bwd}};
    if (cuda) {
        row["peak_gib"] = peak_memory_gib(device);  // the allocator's, GPU only
        row["fwd_bwd_queued_ms"] = queued_median_ms(o.repeats, forward_backward);
    }
    if (!validated.empty()) row["validated"] = validated;
    if (attention == "krause" || attention == "krause-ref") {
        row["path"] = path_name(krause_path(kernels, q, config.window));
    }
    return row;
}

// Each Krause op row's times over the same preset's yardsticks (sdpa, flash-window) of this run.
void add_op_ratios(nlohmann::json& ops) {
    for (auto& row : ops) {
        if (row.contains("error") || yardstick(row["attention"].get<std::string>())) continue;
        for (const auto& base : ops) {
            const auto name = base["attention"].get<std::string>();
            if (base.contains("error") || !yardstick(name) || base["preset"] != row["preset"]) {
                continue;
            }
            for (const char* key : {"fwd_ms", "fwd_bwd_ms", "fwd_bwd_queued_ms"}) {
                if (!row.contains(key) || !base.contains(key)) continue;
                row[std::string(key) + "_over_" + name] =
                    row[key].get<double>() / base[key].get<double>();
            }
        }
    }
}

// Prints the run's tables, each only where the run measured it; a figure the run did not
// measure (a part not asked for, GPU memory on the CPU) shows as "-".
// extra_precisions: the sampling precisions after the first, one column each where a row has
// a figure for it (fp8 rings: none on a CPU).
void print_table(const nlohmann::json& result, std::vector<std::string> extra_precisions) {
    fmt::print("device: {}   date: {}   repeats: {} (median)\n",
               result["device"].get<std::string>(), result["date"].get<std::string>(),
               result["repeats"].get<int>());
    auto num = [](const nlohmann::json& r, const char* key, const char* format) -> std::string {
        if (!r.contains(key)) return "-";
        return fmt::format(fmt::runtime(format), r[key].get<double>());
    };
    auto count = [](const nlohmann::json& r, const char* key) -> std::string {
        return r.contains(key) ? std::to_string(r[key].get<int64_t>()) : "-";
    };
    auto any_row = [](const nlohmann::json& rows, const std::string& key) {
        return std::any_of(rows.begin(), rows.end(),
                           [&](const nlohmann::json& r) { return r.contains(key); });
    };
    extra_precisions.erase(
        std::remove_if(extra_precisions.begin(), extra_precisions.end(),
                       [&](const std::string& p) {
                           return !any_row(result["models"], "sample_" + p + "_images_per_s");
                       }),
        extra_precisions.end());
    bool extrapolated = false;
    if (!result["models"].empty()) {
        fmt::print("{:<13} {:<11} {:>6} {:>11} {:>9} {:>7} {:>6} {:>11} {:>7} {:>11}", "preset",
                   "attention", "batch", "train img/s", "peak GiB", "MFU", "fwd b", "fwd img/s",
                   "smp b", "sample im/s");
        for (const auto& p : extra_precisions) fmt::print(" {:>11}", p + " im/s");
        fmt::print("\n");
    }
    for (const auto& r : result["models"]) {
        if (r.contains("error")) {
            fmt::print("{:<13} {:<11} failed: {}\n", r["preset"].get<std::string>(),
                       r["attention"].get<std::string>(), r["error"].get<std::string>());
            continue;
        }
        const std::string star = r.value("sample_extrapolated", false) ? "*" : "";
        extrapolated = extrapolated || !star.empty();
        fmt::print("{:<13} {:<11} {:>6} {:>11} {:>9} {:>7} {:>6} {:>11} {:>7} {:>11}",
                   r["preset"].get<std::string>(), r["attention"].get<std::string>(),
                   count(r, "train_batch"), num(r, "train_images_per_s", "{:.1f}"),
                   num(r, "train_peak_gib", "{:.2f}"), num(r, "train_mfu", "{:.3f}"),
                   count(r, "forward_batch"), num(r, "forward_images_per_s", "{:.1f}"),
                   count(r, "sample_batch"), num(r, "sample_images_per_s", "{:.2f}") + star);
        for (const auto& p : extra_precisions) {
            const auto key = "sample_" + p + "_images_per_s";
            fmt::print(" {:>11}", r.contains(key) ? num(r, key.c_str(), "{:.2f}") + star : "-");
        }
        fmt::print("\n");
    }
    // The queued time and the ratio columns where the run measured them (GPU only; the ratios
    // need a yardstick: sdpa, flash-window).
    const bool queued = any_row(result["ops"], "fwd_bwd_queued_ms");
    const bool ratios = any_row(result["ops"], "fwd_bwd_ms_over_sdpa") ||
                        any_row(result["ops"], "fwd_bwd_ms_over_flash-window");
    const bool queued_ratio = any_row(result["ops"], "fwd_bwd_queued_ms_over_sdpa");
    if (!result["ops"].empty()) {
        fmt::print(
            "\nattention op, forward and forward + backward{}:\n"
            "{:<13} {:<12} {:>4} {:>3} {:>6} {:>4} {:>5} {:>5} {:>6} {:>10} {:>10}",
            ratios ? " (f+b over this run's yardsticks)" : "", "preset", "attention", "B", "H",
            "T", "D", "W", "K", "dtype", "fwd ms", "f+b ms");
        if (queued) fmt::print(" {:>10}", "queued ms");
        fmt::print(" {:>9}", "peak GiB");
        if (ratios) fmt::print(" {:>7} {:>7}", "/sdpa", "/flashW");
        if (queued_ratio) fmt::print(" {:>8}", "q /sdpa");
        fmt::print("\n");
        for (const auto& r : result["ops"]) {
            if (r.contains("error")) {
                fmt::print("{:<13} {:<12} failed: {}\n", r["preset"].get<std::string>(),
                           r["attention"].get<std::string>(), r["error"].get<std::string>());
                continue;
            }
            fmt::print("{:<13} {:<12} {:>4} {:>3} {:>6} {:>4} {:>5} {:>5} {:>6} {:>10.3f} "
                       "{:>10.3f}",
                       r["preset"].get<std::string>(), r["attention"].get<std::string>(),
                       r["B"].get<int64_t>(), r["H"].get<int64_t>(), r["T"].get<int64_t>(),
                       r["D"].get<int64_t>(), r["W"].get<int64_t>(), r["K"].get<int64_t>(),
                       r["dtype"].get<std::string>(), r["fwd_ms"].get<double>(),
                       r["fwd_bwd_ms"].get<double>());
            if (queued) fmt::print(" {:>10}", num(r, "fwd_bwd_queued_ms", "{:.3f}"));
            fmt::print(" {:>9}", num(r, "peak_gib", "{:.2f}"));
            if (ratios) {
                fmt::print(" {:>7} {:>7}", num(r, "fwd_bwd_ms_over_sdpa", "{:.2f}"),
                           num(r, "fwd_bwd_ms_over_flash-window", "{:.2f}"));
            }
            if (queued_ratio) fmt::print(" {:>8}", num(r, "fwd_bwd_queued_ms_over_sdpa", "{:.2f}"));
            fmt::print("\n");
        }
    }
    if (extrapolated) fmt::print("(* sampling extrapolated from a timed prefix of each image)\n");
    // What validation measured before timing: each fused result's error against fp64 and the
    // bound of the tests' rule (twice the ATen path's error plus a floor).
    for (const char* part : {"models", "ops"}) {
        for (const auto& r : result[part]) {
            if (r.contains("validated")) {
                fmt::print("validated {} {} {}: {}\n", r["preset"].get<std::string>(),
                           r["attention"].get<std::string>(),
                           part == std::string("ops") ? "op" : "model",
                           r["validated"].get<std::string>());
            }
        }
    }
}

void run_bench(const BenchOptions& o) {
    set_compute_threads(o.threads);
    if (o.repeats < 1 || o.warmup < 0) throw UsageError("--repeats must be >= 1", "");
    const auto device = pick_device(o.device);
    // The paper's shapes take minutes a row on a CPU (mnist's training step at batch 8 took 5.6 s
    // on 2 cores, cifar10's does about 20 times its work): without --preset the CPU times the
    // small MNIST model.
    const std::string presets =
        !o.presets.empty() ? o.presets : device.is_cuda() ? "mnist,cifar10" : "mnist-small";
    check_names("--preset", presets, preset_names());
    check_names("--attention", o.attentions,
                {"krause", "krause-ref", "softmax", "linear", "sdpa", "flash-window"});
    check_names("--what", o.what, {"train", "forward", "sample", "op"});
    check_names("--sample-precision", o.sample_precision, {"auto", "fp32", "bf16", "fp8"});
    o.kernels().validate();
    nlohmann::json result = {{"device", device_name(device)}, {"date", today()},
                             {"repeats", o.repeats}, {"tensor_cores", o.tensor_cores},
                             {"decode_warps", o.decode_warps},
                             {"models", nlohmann::json::array()},
                             {"ops", nlohmann::json::array()}};
    for (const auto& p : split_list(presets)) {
        for (const auto& a : split_list(o.attentions)) {
            // A row that fails (e.g. out of memory) is reported as such; the others still run.
            auto guarded = [&](const char* part, auto&& fn) {
                nlohmann::json row;
                try {
                    row = fn();
                } catch (const std::exception& e) {
                    std::string what = e.what();
                    row = {{"preset", p}, {"attention", a},
                           {"error", what.substr(0, what.find('\n'))}};
                }
                fmt::print(stderr, "bench {} {} {}: {}\n", p, a, part, row.dump());
                return row;
            };
            const bool model_part =
                has(o.what, "train") || has(o.what, "forward") || has(o.what, "sample");
            if (model_part && !yardstick(a)) {
                result["models"].push_back(
                    guarded("model", [&] { return bench_model(o, p, a, device); }));
            }
            if (has(o.what, "op") && (device.is_cuda() || !yardstick(a))) {
                result["ops"].push_back(guarded("op", [&] { return bench_op(o, p, a, device); }));
            }
        }
    }
    add_op_ratios(result["ops"]);
    if (o.json) {
        fmt::print("{}\n", result.dump());
    } else {
        const auto precisions = split_list(o.sample_precision);
        print_table(result, has(o.what, "sample") ? std::vector<std::string>(
                                                        precisions.begin() + 1, precisions.end())
                                                  : std::vector<std::string>());
    }
}

}  // namespace

void add_bench_command(CLI::App& app) {
    auto o = std::make_shared<BenchOptions>();
    auto* c = app.add_subcommand("bench", "Measure training, sampling and attention speed");
    c->add_option("--preset", o->presets,
                  "comma-separated presets (default: mnist,cifar10 on a GPU, mnist-small on the "
                  "CPU)");
    c->add_option(
         "--attention", o->attentions,
         "krause, krause-ref (ATen path), softmax, linear; op-only yardsticks on a GPU: sdpa "
         "(PyTorch's causal attention, LibTorch 2), flash-window (its flash attention over the "
         "window, LibTorch 2.5)")
        ->capture_default_str();
    c->add_option("--what", o->what, "train, forward, sample, op")->capture_default_str();
    c->add_option("--device", o->device, "auto | cpu | cuda")->capture_default_str();
    c->add_option("--batch", o->train_batch, "training/forward batch (0: per preset)");
    c->add_option("--sample-batch", o->sample_batch, "images sampled at once (0: per preset)");
    c->add_option("--sample-tokens", o->sample_tokens, "time only this many tokens (0: all)");
    c->add_option("--sample-precision", o->sample_precision,
                  "comma-separated: auto (bf16 on a GPU), fp32, bf16, fp8 (Krause ring buffers "
                  "in fp8); the first is the row's sampling figure, each further one is timed "
                  "too where it applies (fp8: Krause on a GPU)")
        ->capture_default_str();
    c->add_option("--sample-loop", o->sample_loop,
                  "auto | host (position on the host) | device | graph (a CUDA graph per step)")
        ->check(CLI::IsMember({"auto", "host", "device", "graph"}))
        ->capture_default_str();
    c->add_option("--op-batch", o->op_batch, "batch of the attention-op benchmark")
        ->capture_default_str();
    c->add_option("--op-window", o->op_window,
                  "keys in each query's window in the op benchmark (0: the preset's)")
        ->check(CLI::NonNegativeNumber);
    c->add_option("--op-top-k", o->op_top_k,
                  "keys kept per query in the op benchmark (0: the preset's; >= the window: "
                  "no selection)")
        ->check(CLI::NonNegativeNumber);
    c->add_option("--repeats", o->repeats, "timed runs (the median is reported)")
        ->capture_default_str();
    c->add_option("--warmup", o->warmup, "untimed runs first")->capture_default_str();
    c->add_option("--threads", o->threads,
                  "CPU threads of LibTorch and of its BLAS (0: their defaults)");
    c->add_option("--tensor-cores", o->tensor_cores,
                  "on | off: the bf16 Krause kernels on tensor cores or on CUDA cores")
        ->check(CLI::IsMember({"on", "off"}))
        ->capture_default_str();
    c->add_option("--cpu-avx2", o->cpu_avx2,
                  "on | off: the CPU loops of Krause attention compiled for AVX2 (where the CPU "
                  "has it) or for baseline x86-64; the same results either way")
        ->check(CLI::IsMember({"on", "off"}))
        ->capture_default_str();
    c->add_option("--decode-warps", o->decode_warps,
                  "warps per query in the Krause decode kernel: 1, 2, 4, 8, or 0 (by batch)")
        ->check(CLI::IsMember({0, 1, 2, 4, 8}))
        ->capture_default_str();
    c->add_flag("--json", o->json, "print one JSON object");
    c->callback([o] { run_bench(*o); });
}

}  // namespace krause::cli
