// Fuzzes the IDX (MNIST, Fashion-MNIST) loader through load_dataset on a scratch folder.
// Input: [flags][labels length, u16 LE][labels file][images file]. flags bits 0-1: the image
// limit (0..3), bit 2: write the files under their .gz names, bit 3: the test split.
#include "fuzz_util.h"
#include "data/dataset.h"

#include <cstring>

using namespace krause;
using namespace krause::fuzz;

namespace {

Bytes idx_images(uint32_t n, uint32_t rows = 28, uint32_t cols = 28) {
    Bytes out;
    put_be32(out, 0x803);
    put_be32(out, n);
    put_be32(out, rows);
    put_be32(out, cols);
    for (uint32_t i = 0; i < n * rows * cols; ++i) out.push_back(uint8_t(i * 7));
    return out;
}

Bytes idx_labels(uint32_t n) {
    Bytes out;
    put_be32(out, 0x801);
    put_be32(out, n);
    for (uint32_t i = 0; i < n; ++i) out.push_back(uint8_t(i % 10));
    return out;
}

Bytes pack(uint8_t flags, const Bytes& labels, const Bytes& images) {
    Bytes out = {flags, uint8_t(labels.size()), uint8_t(labels.size() >> 8)};
    out.insert(out.end(), labels.begin(), labels.end());
    out.insert(out.end(), images.begin(), images.end());
    return out;
}

Bytes gz(const Bytes& b) {
    return gzip_compress(b.data(), b.size());
}

std::vector<std::pair<std::string, Bytes>> seeds() {
    Bytes bad_label = idx_labels(2);
    bad_label.back() = 10;
    return {
        {"valid-2", pack(0, idx_labels(2), idx_images(2))},
        {"valid-3-limit-1", pack(1 | 8, idx_labels(3), idx_images(3))},
        {"gzipped", pack(4, gz(idx_labels(2)), gz(idx_images(2)))},
        {"swapped", pack(0, idx_images(1), idx_labels(1))},
        {"count-mismatch", pack(0, idx_labels(3), idx_images(2))},
        {"label-10", pack(0, bad_label, idx_images(2))},
        {"cifar-sized", pack(0, idx_labels(1), idx_images(1, 32, 32))},
    };
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    maybe_write_seeds(seeds);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 3) return 0;
    const uint8_t flags = data[0];
    size_t labels_len = size_t(data[1]) | (size_t(data[2]) << 8);
    data += 3;
    size -= 3;
    labels_len = std::min(labels_len, size);

    const std::string& dir = scratch_dir();
    const bool test = flags & 8;
    const std::string prefix = test ? "t10k" : "train";
    const std::string suffix = (flags & 4) ? ".gz" : "";
    for (const char* stale : {"-labels-idx1-ubyte", "-labels-idx1-ubyte.gz", "-images-idx3-ubyte",
                              "-images-idx3-ubyte.gz"}) {
        std::filesystem::remove(dir + "/" + prefix + stale);
    }
    write_file(dir + "/" + prefix + "-labels-idx1-ubyte" + suffix, data, labels_len);
    write_file(dir + "/" + prefix + "-images-idx3-ubyte" + suffix, data + labels_len,
               size - labels_len);
    try {
        const Dataset ds =
            load_dataset({DatasetKind::Mnist, dir}, test ? Split::Test : Split::Train, flags & 3);
        // A loaded data set must be consistent with itself.
        if (ds.size() < 1 || ds.tokens.size() != size_t(ds.size() * ds.seq_len())) std::abort();
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
