// The scores of the decoding step (decode.cu): the ring's elements (fp8 e4m3 bytes and the
// conversions), and a window's scores in the direct form ||q - k||^2 on CUDA cores or from key
// norms and q.k on tensor cores. Included by decode.cu alone: its names keep the internal
// linkage they had there.
#pragma once

#include "model/cuda/mma.cuh"
#include "model/cuda/warp.cuh"

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>
#include <type_traits>

namespace krause {
namespace {

// A ring-buffer element of fp8 (e4m3: 4 exponent bits, 3 mantissa bits, finite range +-448),
// stored as its byte in a kByte tensor. Caches of this type halve the bytes a decode step reads.
struct E4M3 {
    uint8_t bits;
};

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(c10::BFloat16 x) { return static_cast<float>(x); }
__device__ __forceinline__ float to_float(c10::Half x) { return static_cast<float>(x); }
__device__ __forceinline__ float to_float(E4M3 x) {
    return __half2float(__half(__nv_cvt_fp8_to_halfraw(x.bits, __NV_E4M3)));
}

// A value of the step's dtype as a ring element: unchanged, or rounded to the nearest fp8
// (saturating at +-448).
template <typename cache_t, typename scalar_t>
__device__ __forceinline__ cache_t to_cache(scalar_t x) {
    if constexpr (std::is_same_v<cache_t, E4M3>) {
        return E4M3{__nv_cvt_float_to_fp8(to_float(x), __NV_SATFINITE, __NV_E4M3)};
    } else {
        return x;
    }
}

// Eight head dims of a row as floats: one 16-byte load for 16-bit types, two for fp32, one
// 8-byte load for fp8. The row offset must be a multiple of 8 elements (D % 8 == 0). Plain
// loads, not the read-only path: the step's own key row is stored by the same kernel.
template <typename cache_t>
__device__ __forceinline__ void load8(const cache_t* __restrict__ src, float (&x)[8]) {
    if constexpr (std::is_same_v<cache_t, E4M3>) {
        const uint2 raw = *reinterpret_cast<const uint2*>(src);
        const unsigned words[2] = {raw.x, raw.y};
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            // The lower byte of each pair is the earlier element.
            const auto pair = static_cast<__nv_fp8x2_storage_t>(words[i / 2] >> (16 * (i % 2)));
            const float2 f = __half22float2(__half2(__nv_cvt_fp8x2_to_halfraw2(pair, __NV_E4M3)));
            x[2 * i] = f.x;
            x[2 * i + 1] = f.y;
        }
    } else if constexpr (sizeof(cache_t) == 2) {
        const uint4 raw = *reinterpret_cast<const uint4*>(src);
        const cache_t* e = reinterpret_cast<const cache_t*>(&raw);
#pragma unroll
        for (int i = 0; i < 8; ++i) x[i] = to_float(e[i]);
    } else {
        const float4 a = *reinterpret_cast<const float4*>(src);
        const float4 b = *(reinterpret_cast<const float4*>(src) + 1);
        x[0] = a.x, x[1] = a.y, x[2] = a.z, x[3] = a.w;
        x[4] = b.x, x[5] = b.y, x[6] = b.z, x[7] = b.w;
    }
}

// The scores of slots 0 .. n_valid - 1 into w in the direct form ||q - k||^2: threads (rank r
// of a group of kSize) own slots, so a warp reads 32 consecutive key rows at once.
template <typename cache_t, int kSize, bool kVector, int kD>
__device__ __forceinline__ void scores_direct(const cache_t* keys, const float* q, float coef,
                                              int n_valid, int dims, int r, float* w) {
    const int D = kD > 0 ? kD : dims;
    // Row pointers advance by a constant step instead of being formed from s at every slot.
    const int64_t key_step = static_cast<int64_t>(kSize) * D;
    const cache_t* key = keys + static_cast<int64_t>(r) * D;
#pragma unroll 4
    for (int s = r; s < n_valid; s += kSize, key += key_step) {
        float acc = 0.f;
        // Blocks of 8 dims are summed apart before they join the running sum, which then
        // rounds an eighth as often.
        if constexpr (kVector) {
#pragma unroll
            for (int d = 0; d < D; d += 8) {
                float k8[8];
                load8(key + d, k8);
                const float4 qa = *reinterpret_cast<const float4*>(q + d);
                const float4 qb = *reinterpret_cast<const float4*>(q + d + 4);
                const float q8[8] = {qa.x, qa.y, qa.z, qa.w, qb.x, qb.y, qb.z, qb.w};
                float t[8];
#pragma unroll
                for (int i = 0; i < 8; ++i) t[i] = q8[i] - k8[i];
                const float a = __fmaf_rn(t[1], t[1], __fmul_rn(t[0], t[0]));
                const float b = __fmaf_rn(t[3], t[3], __fmul_rn(t[2], t[2]));
                const float c = __fmaf_rn(t[5], t[5], __fmul_rn(t[4], t[4]));
                const float e = __fmaf_rn(t[7], t[7], __fmul_rn(t[6], t[6]));
                acc = __fadd_rn(acc, __fadd_rn(__fadd_rn(a, b), __fadd_rn(c, e)));
            }
        } else {
            for (int d = 0; d < D; ++d) {
                const float t = q[d] - to_float(key[d]);
                acc = __fmaf_rn(t, t, acc);
            }
        }
        w[s] = -acc * coef;
    }
}

// ---- Scores on tensor cores ----
// A ring's keys are the A operand of mma_16816 (16 slots by 16 dims a tile) and the query the B
// operand's first column, so each product gives 16 dot products q.k, and with the key norms
// stored beside the ring the distance is the training kernels' expanded_distance. bf16 and fp16
// rings only, whose keys and queries (the step's dtype) are the operands exactly, so the
// products are formed without rounding; and head size 64 only, where this wins: at head size 32
// (MNIST's shape, one warp per query) and for fp8 rings it was slower than the direct form
// (docs/kernels.md, "The decode step on tensor cores"). krause_decode_uses_key_norms (decode.cu)
// is that rule; kMmaRing only limits which ring types the kernel is compiled for on this path.
template <typename cache_t>
constexpr bool kMmaRing =
    std::is_same_v<cache_t, c10::Half> || std::is_same_v<cache_t, c10::BFloat16>;

// Dims may be assigned to the product's k indices in any order, the query's in the same: lane
// (g, t) takes the kD / 4 dims from t kD / 4 of its rows, and k-step j the four from 4j of them
// (two registers: dims 4j, 4j + 1 at k = 2t, 2t + 1 and 4j + 2, 4j + 3 at k = 2t + 8, 2t + 9).
// So a lane's share of a row is one contiguous load. key_operand: those dims of one key row as
// kD / 8 registers of element pairs, k-step j's in 2j and 2j + 1; zeros where !valid.
template <typename cache_t, int kD>
__device__ __forceinline__ void key_operand(const cache_t* __restrict__ src, bool valid,
                                            unsigned (&r)[kD / 8]) {
#pragma unroll
    for (int i = 0; i < kD / 32; ++i) {  // kD / 2 bytes
        const uint4 x = valid ? *(reinterpret_cast<const uint4*>(src) + i) : uint4{};
        r[4 * i] = x.x, r[4 * i + 1] = x.y, r[4 * i + 2] = x.z, r[4 * i + 3] = x.w;
    }
}

// The query as the B operand: column 0 (lanes g = 0) holds q, the other columns zeros. q: the
// query in shared memory as fp32 (exact in the ring's dtype); two registers per k-step, as
// key_operand's.
template <typename cache_t, int kD>
__device__ __forceinline__ void query_operand(const float* q, int lane, unsigned (&b)[kD / 8]) {
    const float* mine = q + (lane % 4) * (kD / 4);
#pragma unroll
    for (int i = 0; i < kD / 8; ++i) {
        const float x = mine[2 * i], y = mine[2 * i + 1];
        unsigned pair;
        if constexpr (std::is_same_v<cache_t, c10::Half>) {
            pair = pack_half(x, y);
        } else {
            pair = pack_bf16(x, y);
        }
        b[i] = lane / 4 == 0 ? pair : 0u;
    }
}

// The scores of slots 0 .. n_valid - 1 into w on tensor cores: warp `warp` of a group of
// kGroupWarps takes every kGroupWarps-th tile of 16 slots; lanes t = 0 hold a tile's dot
// products (column 0) and store its scores.
template <typename cache_t, int kD, int kGroupWarps>
__device__ __forceinline__ void scores_on_tensor_cores(const cache_t* keys, const float* norms,
                                                       const float* q, float coef, int n_valid,
                                                       int warp, int lane, float* w) {
    const int g = lane / 4, t = lane % 4;
    float part = 0.f;
    for (int d = lane; d < kD; d += 32) part = __fmaf_rn(q[d], q[d], part);
    const float q_norm = warp_sum(part);
    unsigned b[kD / 8];
    query_operand<cache_t, kD>(q, lane, b);
    const cache_t* lane_key = keys + static_cast<int64_t>(g) * kD + t * (kD / 4);
    // Tiles in batches whose loads (keys and norms) are all issued before the first product:
    // 128 bytes of keys in flight per lane, as the direct form's unrolled loop keeps; one tile at
    // a time kept too few (docs/kernels.md, "The decode step on tensor cores").
    // A lane loads kD bytes of keys a tile (two rows of kD / 4 dims of 2 bytes): 2 tiles at 64.
    constexpr int kBatch = 128 / kD;
    constexpr int kStride = 16 * kGroupWarps;
    for (int s0 = 16 * warp; s0 < n_valid; s0 += kStride * kBatch) {
        unsigned a[kBatch][2][kD / 8];  // rows g and g + 8 of each tile
        float kn[kBatch][2];
#pragma unroll
        for (int i = 0; i < kBatch; ++i) {
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const int s = s0 + i * kStride + g + 8 * h;
                key_operand<cache_t, kD>(lane_key + static_cast<int64_t>(s - g) * kD,
                                         s < n_valid, a[i][h]);
                kn[i][h] = t == 0 && s < n_valid ? norms[s] : 0.f;
            }
        }
#pragma unroll
        for (int i = 0; i < kBatch; ++i) {
            float c[4] = {};
#pragma unroll
            for (int j = 0; j < kD / 16; ++j) {
                const unsigned x[4] = {a[i][0][2 * j], a[i][1][2 * j], a[i][0][2 * j + 1],
                                       a[i][1][2 * j + 1]};
                mma_16816<std::is_same_v<cache_t, c10::Half>>(c, x, b[2 * j], b[2 * j + 1]);
            }
            if (t == 0) {
#pragma unroll
                for (int h = 0; h < 2; ++h) {
                    const int s = s0 + i * kStride + g + 8 * h;
                    if (s < n_valid) w[s] = -expanded_distance(q_norm, kn[i][h], c[2 * h]) * coef;
                }
            }
        }
    }
}

}  // namespace
}  // namespace krause
