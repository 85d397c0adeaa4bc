#include "training/threads.h"

#include <ATen/Parallel.h>

#include <dlfcn.h>

namespace krause {

namespace {

// An OpenBLAS function by name where LibTorch's BLAS is a pthreads OpenBLAS, else null. Looked
// up at run time, as the BLAS behind LibTorch varies.
template <typename F>
F openblas_function(const char* name) {
    return reinterpret_cast<F>(dlsym(RTLD_DEFAULT, name));
}

}  // namespace

void set_compute_threads(int threads) {
    if (threads <= 0) return;
    at::set_num_threads(threads);
    // A pthreads OpenBLAS keeps its own pool of one worker per core, which at::set_num_threads
    // leaves alone.
    if (auto set_blas = openblas_function<void (*)(int)>("openblas_set_num_threads")) {
        set_blas(threads);
    }
}

int blas_threads() {
    const auto get_blas = openblas_function<int (*)()>("openblas_get_num_threads");
    return get_blas != nullptr ? get_blas() : 0;
}

}  // namespace krause
