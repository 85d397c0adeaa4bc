#include "training/threads.h"

#include <ATen/Parallel.h>

#include <dlfcn.h>

namespace krause {

void set_compute_threads(int threads) {
    if (threads <= 0) return;
    at::set_num_threads(threads);
    // A pthreads OpenBLAS keeps its own pool of one worker per core, which at::set_num_threads
    // leaves alone. Looked up at run time, as the BLAS behind LibTorch varies.
    using SetThreads = void (*)(int);
    auto* symbol = dlsym(RTLD_DEFAULT, "openblas_set_num_threads");
    if (auto set_blas = reinterpret_cast<SetThreads>(symbol)) set_blas(threads);
}

int blas_threads() {
    using GetThreads = int (*)();
    auto* symbol = dlsym(RTLD_DEFAULT, "openblas_get_num_threads");
    const auto get_blas = reinterpret_cast<GetThreads>(symbol);
    return get_blas != nullptr ? get_blas() : 0;
}

}  // namespace krause
