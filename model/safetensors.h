// Safetensors files: read with full validation before any tensor is built, write atomically.
#pragma once

#include <ATen/ATen.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace krause {

// Thrown for any unreadable, damaged or unsupported file; what() = "<path>: <problem>".
class CheckpointError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;
using Metadata = std::map<std::string, std::string>;

struct SafetensorsFile {
    NamedTensors tensors;  // in the order of their data offsets
    Metadata metadata;
};

// Writes CPU copies of the tensors (any device, made contiguous) in the given order.
// Atomic: writes "<path>.tmp.<pid>", fsyncs, renames over path, fsyncs the directory, then removes
// the temp files that killed writers left beside path. On any error (e.g. disk full) the temp
// file is removed, an existing file at path is left untouched, and a CheckpointError naming the
// path and the OS error is thrown. Duplicate or empty names throw.
void write_safetensors(const std::string& path, const NamedTensors& tensors,
                       const Metadata& metadata);

// Reads and validates: file size >= 8; header length <= file size - 8 and <= 100 MB; header is
// valid JSON object; every entry has a known dtype string, a shape of non-negative ints whose
// product fits in int64 without overflow, data_offsets [b,e] with b<=e<=data size and e-b ==
// numel*itemsize; entries do not overlap and cover the data buffer with no gaps; metadata values
// are strings; BOOL bytes are 0 or 1. Tensors are CPU tensors owning their memory.
SafetensorsFile read_safetensors(const std::string& path);

// Same validation on an in-memory buffer (used by fuzzers); `name` is used in messages.
SafetensorsFile parse_safetensors(const std::string& name, const uint8_t* data, size_t size);

}  // namespace krause
