// How many CPU threads the compute libraries behind LibTorch may use.
#pragma once

namespace krause {

// Sets LibTorch's intra-op threads and, when LibTorch runs on a pthreads OpenBLAS, that BLAS's
// own pool to `threads` (<= 0: leaves both at their defaults). Two pools of spinning workers
// larger than the machine take the cores from each other: on two cores, LibTorch's two threads
// beside OpenBLAS's default two cut sampling to a sixth.
void set_compute_threads(int threads);

// The threads of LibTorch's BLAS pool where it has its own (a pthreads OpenBLAS); 0 where it
// has none or cannot say.
int blas_threads();

}  // namespace krause
