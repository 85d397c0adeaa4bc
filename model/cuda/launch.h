// What the launches of every fused kernel ask of the driver, asked once (defined in
// attention_op.cu; included by the .cu files only).
#pragma once

#include <cstddef>

namespace krause::fused {

// Raises the kernel's dynamic shared memory limit to bytes where a launch on the current device
// needs more than any before, and says whether the kernel's code on this device was built for
// compute capability 9.0 or newer (where the calls of an early launch are compiled in). The
// driver is asked once per kernel and device; later launches make no calls besides their own,
// so a step captured into a CUDA graph after a warm-up step adds none to the capture.
bool prepare_launch(const void* kernel, size_t bytes);

}  // namespace krause::fused
