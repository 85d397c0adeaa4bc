// Md5 over nettle's md5_ctx, and the file helper the fetcher uses to judge a present file.
#include "data/checksum.h"

#include <nettle/md5.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "data/gzip_file.h"

namespace krause {

namespace {

std::string to_hex(const uint8_t* bytes, size_t n) {
    static const char* kDigits = "0123456789abcdef";
    std::string out(n * 2, '0');
    for (size_t i = 0; i < n; ++i) {
        out[2 * i] = kDigits[bytes[i] >> 4];
        out[2 * i + 1] = kDigits[bytes[i] & 15];
    }
    return out;
}

}  // namespace

Md5::Md5() : ctx_(new md5_ctx) {
    md5_init(ctx_.get());
}

Md5::~Md5() = default;

void Md5::update(const uint8_t* data, size_t size) {
    md5_update(ctx_.get(), size, data);
}

std::string Md5::hex_digest() {
    uint8_t digest[MD5_DIGEST_SIZE];
    md5_digest(ctx_.get(), sizeof digest, digest);
    return to_hex(digest, sizeof digest);
}

std::string md5_hex(const uint8_t* data, size_t size) {
    Md5 md5;
    md5.update(data, size);
    return md5.hex_digest();
}

std::string md5_file(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw DataError(path + ": cannot open: " + std::strerror(errno));
    Md5 md5;
    std::vector<uint8_t> buf(size_t(1) << 20);
    size_t got;
    while ((got = std::fread(buf.data(), 1, buf.size(), f)) > 0) md5.update(buf.data(), got);
    const bool failed = std::ferror(f) != 0;
    std::fclose(f);
    if (failed) throw DataError(path + ": read error while computing its md5");
    return md5.hex_digest();
}

}  // namespace krause
