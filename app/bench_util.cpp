// krause bench helpers: CUDA-event or wall-clock medians, peak memory, device facts, FLOPs.
#include "app/bench_util.h"

#include "training/threads.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <stdexcept>
#include <thread>
#include <vector>

#ifdef KRAUSE_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace krause::cli {

namespace {

double median(std::vector<double> times) {
    std::sort(times.begin(), times.end());
    const size_t n = times.size();
    return n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
}

}  // namespace

double median_ms(int repeats, int warmup, bool cuda, const std::function<void()>& fn) {
    for (int i = 0; i < warmup; ++i) fn();
    std::vector<double> times;
    for (int i = 0; i < repeats; ++i) {
#ifdef KRAUSE_WITH_CUDA
        if (cuda) {
            at::cuda::CUDAEvent start(cudaEventDefault), end(cudaEventDefault);
            start.record();
            fn();
            end.record();
            end.synchronize();
            times.push_back(start.elapsed_time(end));
            continue;
        }
#endif
        (void)cuda;
        const auto t0 = std::chrono::steady_clock::now();
        fn();
        times.push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    return median(times);
}

double queued_median_ms(int repeats, const std::function<void()>& fn) {
#ifdef KRAUSE_WITH_CUDA
    std::vector<double> times;
    for (int i = 0; i < repeats; ++i) {
        at::cuda::CUDAEvent start(cudaEventDefault), end(cudaEventDefault);
        fn();  // still running on the GPU when the batch starts
        start.record();
        for (int n = 0; n < kQueuedRuns; ++n) fn();
        end.record();
        end.synchronize();
        times.push_back(start.elapsed_time(end) / kQueuedRuns);
    }
    return median(times);
#else
    (void)repeats;
    (void)fn;
    throw std::logic_error("queued_median_ms times GPU work only");
#endif
}

void reset_peak_memory(const at::Device& device) {
#ifdef KRAUSE_WITH_CUDA
    if (device.is_cuda()) {
        c10::cuda::CUDACachingAllocator::emptyCache();
        c10::cuda::CUDACachingAllocator::resetPeakStats(at::cuda::current_device());
    }
#endif
    (void)device;
}

double peak_memory_gib(const at::Device& device) {
#ifdef KRAUSE_WITH_CUDA
    if (device.is_cuda()) {
        const auto stats =
            c10::cuda::CUDACachingAllocator::getDeviceStats(at::cuda::current_device());
        // Index 0 is the aggregate over pool kinds in every LibTorch 2.x.
        return stats.allocated_bytes[0].peak / double(1ull << 30);
    }
#endif
    (void)device;
    return 0.0;
}

std::string device_name(const at::Device& device) {
#ifdef KRAUSE_WITH_CUDA
    if (device.is_cuda()) return at::cuda::getCurrentDeviceProperties()->name;
#endif
    (void)device;
    const int blas = blas_threads();
    return "CPU (" + std::to_string(std::thread::hardware_concurrency()) + " hardware threads, " +
           std::to_string(at::get_num_threads()) + " used" +
           (blas > 0 ? ", OpenBLAS " + std::to_string(blas) : std::string()) + ")";
}

double peak_bf16_flops(const at::Device& device) {
    const std::string name = device_name(device);
    if (name.find("H100") != std::string::npos || name.find("H200") != std::string::npos) {
        return 989.4e12;  // dense bf16, SXM parts
    }
    if (name.find("A100") != std::string::npos) return 312e12;
    return 0.0;
}

std::string today() {
    const std::time_t now = std::time(nullptr);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d", std::gmtime(&now));
    return buf;
}

double training_flops_per_image(const ModelConfig& c) {
    const double d = static_cast<double>(c.d_model);
    const int64_t S = c.seq_len() - 1;  // network positions
    double forward = 0;
    for (int64_t t = 0; t < S; ++t) {
        double attention = 0;  // multiply-adds x 2 over all heads
        switch (c.attention) {
            case AttentionKind::Krause: {
                const double window = static_cast<double>(std::min<int64_t>(c.window, t + 1));
                const double kept = std::min<double>(window, static_cast<double>(c.top_k));
                attention = 2 * d * window + 2 * d * kept;
                break;
            }
            case AttentionKind::Softmax: attention = 4 * d * static_cast<double>(t + 1); break;
            case AttentionKind::Linear: attention = 4 * d * c.head_dim(); break;
        }
        forward += c.n_layers * (24 * d * d + attention) + 2 * d * 256;
    }
    return 3 * forward;
}

}  // namespace krause::cli
