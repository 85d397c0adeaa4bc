// MD5 (RFC 1321) and SHA-256 (FIPS 180-4), written from the specifications, for verifying
// downloads. MD5 is only used because the dataset publishers list MD5 sums; it is not a security
// check.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace krause {

// Incremental MD5: update() any number of times, then hex_digest() once.
class Md5 {
public:
    Md5();
    void update(const uint8_t* data, size_t size);
    std::string hex_digest();  // finalises; the object must not be updated afterwards

private:
    void block(const uint8_t* p);
    std::array<uint32_t, 4> state_;
    std::array<uint8_t, 64> buffer_{};
    size_t buffered_ = 0;
    uint64_t total_bytes_ = 0;
};

// Incremental SHA-256, same protocol as Md5.
class Sha256 {
public:
    Sha256();
    void update(const uint8_t* data, size_t size);
    std::string hex_digest();

private:
    void block(const uint8_t* p);
    std::array<uint32_t, 8> state_;
    std::array<uint8_t, 64> buffer_{};
    size_t buffered_ = 0;
    uint64_t total_bytes_ = 0;
};

std::string md5_hex(const uint8_t* data, size_t size);
std::string sha256_hex(const uint8_t* data, size_t size);
// Hash a file's raw bytes (no gunzip). Throw DataError naming the file when it cannot be read.
std::string md5_file(const std::string& path);
std::string sha256_file(const std::string& path);

}  // namespace krause
