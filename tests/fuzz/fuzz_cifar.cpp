// Fuzzes the CIFAR-10 binary loader through load_dataset: the input is test_batch.bin (or
// test_batch.bin.gz when flags bit 2 is set) in a scratch folder.
// Input: [flags][file]. flags bits 0-1: the image limit (0..3).
#include "fuzz_util.h"
#include "data/dataset.h"

using namespace krause;
using namespace krause::fuzz;

namespace {

constexpr size_t kRecord = 3073;

Bytes records(size_t n, uint8_t first_label = 0) {
    Bytes out;
    for (size_t r = 0; r < n; ++r) {
        out.push_back(uint8_t((first_label + r) % 10));
        for (size_t i = 0; i + 1 < kRecord; ++i) out.push_back(uint8_t(i * 13 + r));
    }
    return out;
}

Bytes with_flags(uint8_t flags, const Bytes& body) {
    Bytes out = {flags};
    out.insert(out.end(), body.begin(), body.end());
    return out;
}

std::vector<std::pair<std::string, Bytes>> seeds() {
    Bytes bad = records(1);
    bad[0] = 200;
    Bytes one = records(1);
    Bytes gz = gzip_compress(one.data(), one.size());
    return {
        {"one", with_flags(0, one)},
        {"two-limit-1", with_flags(1, records(2, 3))},
        {"gzipped", with_flags(4, gz)},
        {"bad-label", with_flags(0, bad)},
        {"short", with_flags(0, Bytes(one.begin(), one.begin() + 100))},
    };
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    maybe_write_seeds(seeds);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    const uint8_t flags = data[0];
    const std::string& dir = scratch_dir();
    std::filesystem::remove(dir + "/test_batch.bin");
    std::filesystem::remove(dir + "/test_batch.bin.gz");
    write_file(dir + ((flags & 4) ? "/test_batch.bin.gz" : "/test_batch.bin"), data + 1, size - 1);
    try {
        const Dataset ds = load_dataset({DatasetKind::Cifar10, dir}, Split::Test, flags & 3);
        if (ds.size() < 1 || ds.seq_len() != 3072 ||
            ds.tokens.size() != size_t(ds.size() * ds.seq_len())) {
            std::abort();
        }
        for (uint8_t l : ds.labels) {
            if (l > 9) std::abort();
        }
    } catch (const DataError& e) {
        expect_names(e, dir);
    } catch (const std::exception& e) {
        unexpected("std::exception", &e);
    }
    return 0;
}
