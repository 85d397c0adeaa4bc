// KRAUSE_HOST_DEVICE marks the functions that the kernels and the CPU code (the loops, the tests)
// share: __host__ __device__ under nvcc, plain inline functions in a CPU build.
#pragma once

#if defined(__CUDACC__)
#define KRAUSE_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define KRAUSE_HOST_DEVICE inline
#endif
