// bf16 autocast for forward passes on CUDA; a no-op elsewhere and on LibTorch older than 2.4.
#pragma once

#include <ATen/autocast_mode.h>
#include <torch/version.h>

namespace krause {

// Scoped: enables autocast to bf16 on CUDA while alive (LibTorch >= 2.4 spells it per device).
class CudaAutocast {
public:
    explicit CudaAutocast(bool enable) : enabled_(enable) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
        if (enabled_) {
            at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
            at::autocast::set_autocast_enabled(at::kCUDA, true);
            at::autocast::increment_nesting();
        }
#else
        enabled_ = false;
#endif
    }
    ~CudaAutocast() {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
        if (enabled_) {
            if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
            at::autocast::set_autocast_enabled(at::kCUDA, false);
        }
#endif
    }
    CudaAutocast(const CudaAutocast&) = delete;
    CudaAutocast& operator=(const CudaAutocast&) = delete;

private:
    bool enabled_;
};

}  // namespace krause
