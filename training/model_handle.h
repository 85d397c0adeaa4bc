// Engine-internal access to an opened model's weights, for jobs implemented beside engine.cpp.
#pragma once

#include "model/transformer.h"
#include "training/engine.h"

namespace krause {

// A private copy of the handle's weights on `device`, in eval mode.
PixelTransformer copy_weights(const ModelHandle& handle, at::Device device);

}  // namespace krause
