// Fuzzes GzipReader and read_maybe_gzipped (data/gzip_file.h) on a scratch file: the whole
// read with a size limit, and a streaming read in odd chunk sizes that must yield the same bytes.
// Input: [limit selector][file].
#include "fuzz_util.h"
#include "data/gzip_file.h"

#include <cstring>

using namespace krause;
using namespace krause::fuzz;

namespace {

std::vector<std::pair<std::string, Bytes>> seeds() {
    const Bytes plain = text("hello, gzip\n");
    Bytes one = gzip_compress(plain.data(), plain.size());
    Bytes two = one;
    two.insert(two.end(), one.begin(), one.end());
    Bytes padded = one;
    padded.insert(padded.end(), 16, 0);
    Bytes truncated(one.begin(), one.end() - 5);
    Bytes big(5000, 'a');
    Bytes bomb = gzip_compress(big.data(), big.size(), 9);
    auto with = [](uint8_t sel, Bytes b) {
        b.insert(b.begin(), sel);
        return b;
    };
    return {{"plain", with(0, plain)},
            {"gzip", with(0, one)},
            {"two-members", with(0, two)},
            {"zero-padding", with(0, padded)},
            {"truncated", with(0, truncated)},
            {"over-limit", with(1, bomb)},
            {"empty", with(0, {})},
            {"magic-only", with(0, {0x1f, 0x8b})}};
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    maybe_write_seeds(seeds);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    static const size_t kLimits[] = {size_t(1) << 20, 64, 0, 4096};
    const size_t limit = kLimits[data[0] & 3];
    const std::string path = scratch_dir() + "/input.gz";
    write_file(path, data + 1, size - 1);

    Bytes whole;
    bool whole_ok = false;
    try {
        whole = read_maybe_gzipped(path, limit);
        whole_ok = true;
        if (whole.size() > limit) std::abort();
    } catch (const DataError& e) {
        expect_names(e, path);
    } catch (const std::exception& e) {
        unexpected("std::exception", &e);
    }

    // Streaming in small, varying chunks must agree with the whole read.
    Bytes streamed;
    try {
        GzipReader reader(path);
        uint8_t buf[97];
        size_t chunk = 1;
        for (;;) {
            const size_t got = reader.read(buf, chunk);
            streamed.insert(streamed.end(), buf, buf + got);
            if (got < chunk || streamed.size() > limit + 1) break;
            chunk = chunk % sizeof buf + 1;
        }
    } catch (const DataError& e) {
        expect_names(e, path);
        if (whole_ok) {
            std::fprintf(stderr, "streaming failed where the whole read succeeded: %s\n", e.what());
            std::abort();
        }
        return 0;
    } catch (const std::exception& e) {
        unexpected("std::exception", &e);
    }
    if (whole_ok && streamed != whole) {
        std::fprintf(stderr, "streamed %zu bytes, whole read %zu\n", streamed.size(), whole.size());
        std::abort();
    }
    return 0;
}
