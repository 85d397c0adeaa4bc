// The band of the windows within the fused kernels' tiles, written once for the device and the
// host: the tensor-core backward skips the 16 x 16 steps it rules out, and a CPU test replays it
// against every pair of a window. Plain C++ apart from the __host__ __device__ marks.
#pragma once

#include "model/cuda/host_device.h"

namespace krause::fused {

// A tile's own rows (queries, or keys in the key pass) stream the other side's rows in a span
// (n_cols rows). Number both from the tile's first row and the span's first row that can pair
// (the key i0 - W + 1 of query tile i0; the query j0 of key tile j0): then row m pairs with span
// rows m .. m + W - 1 only. Rows m0 .. m0 + 15 and span rows n0 .. n0 + 15 hold a pair only
// when in_band holds; outside the band a step's products are all 0 (3 of a warp's 12 steps at
// W = 128, 3 of 20 at W = 256).
KRAUSE_HOST_DEVICE bool in_band(int m0, int n0, int W) {
    return n0 + 15 >= m0 && n0 <= m0 + 14 + W;
}

// Whether a step holds a pair of a live query (< T) and a key of its window: in the band, and
// for a query tile at i0 (key i0 - W + 1 + n in span row n) with a key >= 0 and a query < T; for
// a key tile at j0 (query j0 + n) with a query < T and a key < T. The first tiles of a sequence
// start their spans before its first key, the last ones hold rows past its end.
KRAUSE_HOST_DEVICE bool query_step_live(int i0, int m0, int n0, int W, int T) {
    return in_band(m0, n0, W) && i0 - W + 1 + n0 + 15 >= 0 && i0 + m0 < T;
}
KRAUSE_HOST_DEVICE bool key_step_live(int j0, int m0, int n0, int W, int T) {
    return in_band(m0, n0, W) && j0 + n0 < T && j0 + m0 < T;
}

}  // namespace krause::fused
