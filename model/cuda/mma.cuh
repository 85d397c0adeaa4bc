// Tensor-core products shared by the kernels (included by .cu files only): mma.sync m16n8k16
// with fp32 accumulators on bf16 or fp16 operands (compute capability 8.0+), and the squared
// distance the kernels form from two norms and such a product.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace krause {

// c += a b for a 16 x 16 tile a and a 16 x 8 tile b, the operands bf16 (kHalf false) or fp16
// pairs. Thread (g, t) = (lane / 4, lane % 4) holds a's rows g and g + 8 at columns 2t, 2t + 1
// (registers 0 and 1) and 2t + 8, 2t + 9 (registers 2 and 3); b's column g at rows 2t, 2t + 1
// (b0) and 2t + 8, 2t + 9 (b1); and c's rows g (c[0], c[1]) and g + 8 (c[2], c[3]) at columns
// 2t, 2t + 1. In every pair the lower column or row sits in the low half.
template <bool kHalf = false>
__device__ __forceinline__ void mma_16816(float (&c)[4], const unsigned (&a)[4], unsigned b0,
                                          unsigned b1) {
#if __CUDA_ARCH__ >= 800
    if constexpr (kHalf) {
        asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, "
            "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    } else {
        asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
            "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
#else
    __trap();
#endif
}

__device__ __forceinline__ void mma_bf16(float (&c)[4], const unsigned (&a)[4], unsigned b0,
                                         unsigned b1) {
    mma_16816<false>(c, a, b0, b1);
}

// x (the lower k index of a fragment) and y rounded to one bf16 pair, x in the low half.
__device__ __forceinline__ unsigned pack_bf16(float x, float y) {
    const __nv_bfloat162 b = __floats2bfloat162_rn(x, y);
    return *reinterpret_cast<const unsigned*>(&b);
}

// The same rounded to one fp16 pair.
__device__ __forceinline__ unsigned pack_half(float x, float y) {
    const __half2 h = __floats2half2_rn(x, y);
    return *reinterpret_cast<const unsigned*>(&h);
}

// ||a - b||^2 from the two norms and the tensor-core product a.b, rounded the same way wherever
// it is formed (the sum of the norms is symmetric). 2 a.b is exact, so one fma forms
// (|a|^2 + |b|^2) - 2 a.b with the one rounding a subtraction of 2 a.b would give.
__device__ __forceinline__ float expanded_distance(float norm_a, float norm_b, float dot) {
    return fmaxf(__fmaf_rn(-2.f, dot, __fadd_rn(norm_a, norm_b)), 0.f);
}

}  // namespace krause
