// MD5 of downloads, computed by nettle. MD5 is used only because the data-set publishers list MD5
// sums: it detects a damaged or wrong download, it is not a security check.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

struct md5_ctx;  // nettle/md5.h

namespace krause {

// Incremental MD5: update() any number of times, then hex_digest() once.
class Md5 {
public:
    Md5();
    ~Md5();
    Md5(const Md5&) = delete;
    Md5& operator=(const Md5&) = delete;
    void update(const uint8_t* data, size_t size);
    std::string hex_digest();  // lower-case hex; resets the object to the empty message

private:
    std::unique_ptr<md5_ctx> ctx_;
};

std::string md5_hex(const uint8_t* data, size_t size);
// The md5 of a file's raw bytes (no gunzip). Throws DataError naming the file when it cannot be
// read.
std::string md5_file(const std::string& path);

}  // namespace krause
