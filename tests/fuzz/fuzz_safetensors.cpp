// Fuzzes the safetensors reader (model/safetensors.h): parse_safetensors on the raw input, header
// and body. Whatever parses must survive write_safetensors + read_safetensors unchanged.
#include "fuzz_util.h"
#include "model/safetensors.h"

#include <cstring>

using namespace krause;
using namespace krause::fuzz;

namespace {

Bytes file_of(const std::string& header, const Bytes& body) {
    Bytes out(8);
    const uint64_t n = header.size();
    std::memcpy(out.data(), &n, 8);
    out.insert(out.end(), header.begin(), header.end());
    out.insert(out.end(), body.begin(), body.end());
    return out;
}

std::vector<std::pair<std::string, Bytes>> seeds() {
    const std::string two =
        R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
        R"("b":{"dtype":"BOOL","shape":[2,1],"data_offsets":[8,10]}})";
    Bytes body(8, 0);
    body.push_back(1);
    body.push_back(0);
    Bytes all_dtypes_body;
    std::string all = "{";
    uint64_t off = 0;
    const std::pair<const char*, int> dtypes[] = {{"F64", 8}, {"F32", 4}, {"BF16", 2}, {"F16", 2},
                                                  {"I64", 8}, {"I32", 4}, {"I16", 2},  {"I8", 1},
                                                  {"U8", 1},  {"BOOL", 1}};
    for (const auto& [tag, size] : dtypes) {
        if (all.size() > 1) all += ",";
        all += std::string("\"t_") + tag + "\":{\"dtype\":\"" + tag +
               "\",\"shape\":[1,1],"
               "\"data_offsets\":[" +
               std::to_string(off) + "," + std::to_string(off + size) + "]}";
        off += size;
        all_dtypes_body.insert(all_dtypes_body.end(), size_t(size), 0);
    }
    all += "}";
    return {
        {"two-tensors", file_of(two, body)},
        {"all-dtypes", file_of(all, all_dtypes_body)},
        {"empty-header", file_of("{}", {})},
        {"scalar-and-empty", file_of(R"({"s":{"dtype":"I64","shape":[],"data_offsets":[0,8]},)"
                                     R"("e":{"dtype":"F32","shape":[0,3],"data_offsets":[8,8]}})",
                                     Bytes(8, 7))},
        {"overflow-shape",
         file_of(R"({"x":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})",
                 {})},
        {"huge-length", Bytes{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, '{', '}'}},
        {"duplicate", file_of(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                              R"("a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})",
                              Bytes(1, 0))},
    };
}

bool same(const SafetensorsFile& a, const SafetensorsFile& b) {
    if (a.metadata != b.metadata || a.tensors.size() != b.tensors.size()) return false;
    for (size_t i = 0; i < a.tensors.size(); ++i) {
        const at::Tensor& x = a.tensors[i].second;
        const at::Tensor& y = b.tensors[i].second;
        if (a.tensors[i].first != b.tensors[i].first || x.scalar_type() != y.scalar_type() ||
            x.sizes() != y.sizes()) {
            return false;
        }
        const size_t bytes = size_t(x.numel()) * x.element_size();
        if (bytes && std::memcmp(x.data_ptr(), y.data_ptr(), bytes) != 0) return false;
    }
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    maybe_write_seeds(seeds);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string name = "fuzz-input.safetensors";
    SafetensorsFile parsed;
    try {
        parsed = parse_safetensors(name, data, size);
    } catch (const CheckpointError& e) {
        expect_names(e, name);
        return 0;
    } catch (const std::exception& e) {
        unexpected("std::exception", &e);
    }
    // The same bytes read from a file must give the same result, and so must a rewrite.
    const std::string path = scratch_dir() + "/roundtrip.safetensors";
    try {
        write_file(path, data, size);
        if (!same(parsed, read_safetensors(path))) {
            std::fprintf(stderr, "read_safetensors disagrees with parse_safetensors\n");
            std::abort();
        }
        write_safetensors(path, parsed.tensors, parsed.metadata);
        if (!same(parsed, read_safetensors(path))) {
            std::fprintf(stderr, "write + read changed the content\n");
            std::abort();
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "a file that parses failed to round-trip: %s\n", e.what());
        std::abort();
    }
    return 0;
}
