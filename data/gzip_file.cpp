// GzipReader and read_maybe_gzipped: streaming zlib inflate with size limits and clear errors.
#include "data/gzip_file.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace krause {

namespace {

constexpr size_t kInBufferBytes = 1 << 18;
constexpr size_t kReadChunkBytes = 1 << 20;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
    throw DataError(path + ": " + what);
}

// The gzip trailer holds the uncompressed size mod 2^32: a good reserve() hint for the usual small
// files.
size_t gzip_size_hint(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) return 0;
    uint8_t tail[4] = {0, 0, 0, 0};
    size_t hint = 0;
    if (std::fseek(f, -4, SEEK_END) == 0 && std::fread(tail, 1, 4, f) == 4) {
        hint = size_t(tail[0]) | (size_t(tail[1]) << 8) | (size_t(tail[2]) << 16) |
               (size_t(tail[3]) << 24);
    }
    std::fclose(f);
    return hint;
}

}  // namespace

struct GzipReader::ZState {
    z_stream strm{};
    bool initialised = false;
};

GzipReader::GzipReader(const std::string& path)
    : path_(path), in_buf_(kInBufferBytes), z_(new ZState) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) fail(path_, "is a directory, expected a file");
    file_ = std::fopen(path.c_str(), "rb");
    if (!file_) fail(path_, std::string("cannot open: ") + std::strerror(errno));
    while (in_len_ - in_pos_ < 2 && refill()) {
    }
    gzipped_ = in_len_ - in_pos_ >= 2 && in_buf_[in_pos_] == 0x1f && in_buf_[in_pos_ + 1] == 0x8b;
    if (gzipped_) {
        if (inflateInit2(&z_->strm, 16 + MAX_WBITS) != Z_OK)
            fail(path_, "zlib inflateInit2 failed");
        z_->initialised = true;
    }
}

GzipReader::~GzipReader() {
    if (z_ && z_->initialised) inflateEnd(&z_->strm);
    if (file_) std::fclose(file_);
}

// Moves unread bytes to the front and appends what the file has next; false at end of file.
bool GzipReader::refill() {
    if (file_eof_) return false;
    if (in_pos_ > 0) {
        std::memmove(in_buf_.data(), in_buf_.data() + in_pos_, in_len_ - in_pos_);
        in_len_ -= in_pos_;
        in_pos_ = 0;
    }
    if (in_len_ == in_buf_.size()) return true;
    size_t got = std::fread(in_buf_.data() + in_len_, 1, in_buf_.size() - in_len_, file_);
    if (got == 0) {
        if (std::ferror(file_)) fail(path_, std::string("read error: ") + std::strerror(errno));
        file_eof_ = true;
        return false;
    }
    in_len_ += got;
    return true;
}

size_t GzipReader::read(uint8_t* out, size_t n) {
    if (gzipped_) return read_gzip(out, n);
    size_t produced = 0;
    while (produced < n) {
        if (in_pos_ == in_len_ && !refill()) break;
        size_t take = std::min(n - produced, in_len_ - in_pos_);
        std::memcpy(out + produced, in_buf_.data() + in_pos_, take);
        in_pos_ += take;
        produced += take;
    }
    return produced;
}

size_t GzipReader::read_gzip(uint8_t* out, size_t n) {
    z_stream& s = z_->strm;
    size_t produced = 0;
    while (produced < n && !stream_ended_) {
        if (in_pos_ == in_len_ && !refill()) {
            fail(path_, "gzip stream is truncated (the file ends before the end-of-stream marker)");
        }
        s.next_in = in_buf_.data() + in_pos_;
        s.avail_in = static_cast<uInt>(in_len_ - in_pos_);
        size_t want = std::min<size_t>(n - produced, 1u << 30);
        s.next_out = out + produced;
        s.avail_out = static_cast<uInt>(want);
        int ret = inflate(&s, Z_NO_FLUSH);
        in_pos_ = in_len_ - s.avail_in;
        produced += want - s.avail_out;
        if (ret == Z_STREAM_END) {
            while (in_len_ - in_pos_ < 2 && refill()) {
            }
            size_t left = in_len_ - in_pos_;
            if (left == 0) {
                stream_ended_ = true;
            } else if (left >= 2 && in_buf_[in_pos_] == 0x1f && in_buf_[in_pos_ + 1] == 0x8b) {
                inflateReset(&s);  // another gzip member follows, as `cat a.gz b.gz` makes
            } else {
                // Zero padding after the stream (tape-style blocking) is harmless; anything else is
                // corruption.
                do {
                    for (size_t i = in_pos_; i < in_len_; ++i) {
                        if (in_buf_[i] != 0)
                            fail(path_, "unexpected data after the end of the gzip stream");
                    }
                    in_pos_ = in_len_;
                } while (refill());
                stream_ended_ = true;
            }
        } else if (ret == Z_BUF_ERROR || ret == Z_OK) {
            continue;
        } else {
            std::string msg = s.msg ? s.msg : ("zlib error " + std::to_string(ret));
            fail(path_, "corrupt gzip data (" + msg + ")");
        }
    }
    return produced;
}

void GzipReader::read_into(std::vector<uint8_t>& out, size_t limit) {
    while (out.size() < limit) {
        const size_t old = out.size();
        const size_t want = std::min(kReadChunkBytes, limit - old);
        out.resize(old + want);
        const size_t got = read(out.data() + old, want);
        out.resize(old + got);
        if (got < want) break;
    }
}

std::vector<uint8_t> read_maybe_gzipped(const std::string& path, size_t max_bytes) {
    GzipReader reader(path);
    std::vector<uint8_t> data;
    std::error_code ec;
    size_t hint =
        reader.gzipped() ? gzip_size_hint(path) : size_t(std::filesystem::file_size(path, ec));
    if (ec) hint = 0;
    data.reserve(std::min(hint, max_bytes) + 1);
    // Reading one byte past the limit is how an oversized file is told apart from one of exactly
    // max_bytes.
    const size_t cap = max_bytes == SIZE_MAX ? max_bytes : max_bytes + 1;
    reader.read_into(data, cap);
    if (data.size() > max_bytes) {
        fail(path, "content is larger than the limit of " + std::to_string(max_bytes) + " bytes" +
                       (reader.gzipped() ? " (after gunzip)" : ""));
    }
    return data;
}

std::vector<uint8_t> gzip_compress(const uint8_t* data, size_t size, int level) {
    z_stream s{};
    if (deflateInit2(&s, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        throw std::runtime_error("gzip_compress: deflateInit2 failed");
    }
    std::vector<uint8_t> out(deflateBound(&s, static_cast<uLong>(size)) + 64);
    s.next_in = const_cast<Bytef*>(data);
    s.avail_in = static_cast<uInt>(size);
    s.next_out = out.data();
    s.avail_out = static_cast<uInt>(out.size());
    int ret = deflate(&s, Z_FINISH);
    out.resize(out.size() - s.avail_out);
    deflateEnd(&s);
    if (ret != Z_STREAM_END) throw std::runtime_error("gzip_compress: deflate did not finish");
    return out;
}

}  // namespace krause
