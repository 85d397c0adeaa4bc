// Reading files that may or may not be gzip-compressed, plus a small gzip writer.
// Plain C++17 + zlib: the data loaders and the fetcher share this, and none of them needs LibTorch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace krause {

// Any problem with a data file: missing, truncated, corrupt, wrong checksum. The message names the
// file.
class DataError : public std::runtime_error {
public:
    explicit DataError(const std::string& message) : std::runtime_error(message) {}
};

// Streams the bytes of a file, gunzipping on the fly when it starts with the gzip magic 1f 8b.
// Concatenated gzip members are read as one stream, like gunzip does.
class GzipReader {
public:
    explicit GzipReader(const std::string& path);
    ~GzipReader();
    GzipReader(const GzipReader&) = delete;
    GzipReader& operator=(const GzipReader&) = delete;

    // Fills up to n bytes; returns fewer only at the end of the data. Throws DataError on
    // corruption.
    size_t read(uint8_t* out, size_t n);
    // Appends to `out` in chunks until it holds `limit` bytes or the data ends, growing it only
    // as far as the data goes (a header may claim more than the file holds).
    void read_into(std::vector<uint8_t>& out, size_t limit);
    bool gzipped() const { return gzipped_; }
    const std::string& path() const { return path_; }

private:
    bool refill();
    size_t read_gzip(uint8_t* out, size_t n);

    std::string path_;
    std::FILE* file_ = nullptr;
    bool gzipped_ = false;
    bool stream_ended_ = false;  // the last gzip member ended and nothing follows
    bool file_eof_ = false;
    std::vector<uint8_t> in_buf_;
    size_t in_pos_ = 0;  // next unread byte of in_buf_
    size_t in_len_ = 0;  // bytes of in_buf_ that hold file data
    struct ZState;
    std::unique_ptr<ZState> z_;
};

// Reads the whole (decompressed) content. Throws DataError naming the file when it is missing,
// unreadable, corrupt, truncated, or when its content exceeds max_bytes.
std::vector<uint8_t> read_maybe_gzipped(const std::string& path, size_t max_bytes);

// Compresses bytes into a complete gzip stream (used to write test fixtures and caches).
std::vector<uint8_t> gzip_compress(const uint8_t* data, size_t size, int level = 6);

}  // namespace krause
