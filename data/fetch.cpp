// fetch_files (curl via posix_spawnp, md5-verified, atomic rename), a streaming ustar reader, and
// the per-dataset download recipes with the published URLs and md5 sums.
#include "data/fetch.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>

#include "data/checksum.h"
#include "data/gzip_file.h"

extern char** environ;

namespace krause {

namespace fs = std::filesystem;

namespace {

constexpr const char* kMnistBase = "https://ossci-datasets.s3.amazonaws.com/mnist/";
constexpr const char* kFashionBase = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/";
constexpr const char* kCifarUrl = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
constexpr const char* kCifarMd5 = "c32a1d4ab5d03f1284b67883e8d87530";
constexpr const char* kCifarBatchDir = "cifar-10-batches-bin";
constexpr int64_t kCifarRecordBytes = 3073;
constexpr size_t kTarBlock = 512;

void say(const ProgressFn& progress, const std::string& line) {
    if (progress) progress(line);
}

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// Deletes a temporary file unless release() was called, so no failure path leaves a partial
// download.
class TempFile {
public:
    explicit TempFile(std::string path) : path_(std::move(path)) {}
    ~TempFile() {
        if (!path_.empty()) std::remove(path_.c_str());
    }
    void release() { path_.clear(); }

private:
    std::string path_;
};

struct CurlResult {
    int exit_code = -1;
    std::string stderr_text;
};

// Runs curl without a shell, so URLs and paths need no quoting; its stderr is captured for the
// error message.
CurlResult run_curl(const std::string& url, const std::string& out_path) {
    // A stalled server (under 1 byte/s for two minutes) fails the download instead of hanging.
    std::vector<std::string> args = {
        "curl",   "-fL",           "-sS", "--retry",      "3",   "--connect-timeout",
        "30",     "--speed-limit", "1",   "--speed-time", "120", "-o",
        out_path, "--url",         url};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    int fds[2];
    if (pipe(fds) != 0)
        throw DataError(out_path + ": cannot create a pipe for curl: " + std::strerror(errno));
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    posix_spawn_file_actions_addclose(&actions, fds[1]);
    pid_t pid = 0;
    int rc = posix_spawnp(&pid, "curl", &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        throw DataError(out_path + ": cannot run curl (" + std::strerror(rc) +
                        "); install curl or download " + url + " yourself");
    }
    CurlResult result;
    char buf[4096];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) != 0) {
        if (n < 0) {
            if (errno == EINTR) continue;
            break;
        }
        result.stderr_text.append(buf, size_t(n));
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            throw DataError(out_path + ": waiting for curl failed: " + std::strerror(errno));
    }
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    while (!result.stderr_text.empty() &&
           std::isspace(static_cast<unsigned char>(result.stderr_text.back()))) {
        result.stderr_text.pop_back();
    }
    return result;
}

void make_dir(const std::string& dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec || !fs::is_directory(dir))
        throw DataError(dir + ": cannot create folder: " + ec.message());
}

// ---- tar ----

std::string field_str(const uint8_t* p, size_t n) {
    size_t len = 0;
    while (len < n && p[len] != 0) ++len;
    return std::string(reinterpret_cast<const char*>(p), len);
}

// Numeric header fields: octal text, or GNU base-256 when the top bit of the first byte is set.
bool parse_number(const uint8_t* p, size_t n, uint64_t& out) {
    out = 0;
    if (p[0] & 0x80) {
        out = p[0] & 0x7f;
        for (size_t i = 1; i < n; ++i) out = (out << 8) | p[i];
        return true;
    }
    size_t i = 0;
    while (i < n && p[i] == ' ') ++i;
    bool any = false;
    for (; i < n && p[i] >= '0' && p[i] <= '7'; ++i) {
        out = out * 8 + (p[i] - '0');
        any = true;
    }
    for (; i < n; ++i) {
        if (p[i] != ' ' && p[i] != 0) return false;
    }
    return any;
}

std::string normalise_member(std::string name) {
    while (name.rfind("./", 0) == 0) name.erase(0, 2);
    return name;
}

// pax extended headers are "<len> key=value\n" records; only the path matters here.
std::string pax_path(const std::string& data) {
    size_t pos = 0;
    while (pos < data.size()) {
        size_t space = data.find(' ', pos);
        if (space == std::string::npos) break;
        size_t len = std::strtoul(data.c_str() + pos, nullptr, 10);
        if (len == 0 || pos + len > data.size()) break;
        std::string record = data.substr(space + 1, pos + len - space - 2);
        if (record.rfind("path=", 0) == 0) return record.substr(5);
        pos += len;
    }
    return "";
}

class TarStream {
public:
    explicit TarStream(const std::string& path) : reader_(path) {}
    // Reads exactly n bytes; a short read means the archive is truncated.
    void read_exact(uint8_t* out, size_t n) {
        size_t got = reader_.read(out, n);
        offset_ += got;
        if (got < n)
            throw DataError(reader_.path() + ": tar archive is truncated at byte " +
                            std::to_string(offset_));
    }
    size_t read_some(uint8_t* out, size_t n) {
        size_t got = reader_.read(out, n);
        offset_ += got;
        return got;
    }
    uint64_t offset() const { return offset_; }
    const std::string& path() const { return reader_.path(); }

private:
    GzipReader reader_;
    uint64_t offset_ = 0;
};

std::string read_member_text(TarStream& tar, uint64_t size) {
    if (size > (uint64_t(1) << 20))
        throw DataError(tar.path() + ": tar extended header is implausibly large");
    std::string text(size_t((size + kTarBlock - 1) / kTarBlock * kTarBlock), '\0');
    tar.read_exact(reinterpret_cast<uint8_t*>(text.data()), text.size());
    text.resize(size_t(size));
    return text;
}

// Streams `size` bytes of member data (plus block padding) to out, or discards them when out is
// null.
void copy_member(TarStream& tar, uint64_t size, std::FILE* out, const std::string& out_path) {
    std::vector<uint8_t> buf(1 << 20);
    uint64_t padded = (size + kTarBlock - 1) / kTarBlock * kTarBlock;
    uint64_t done = 0;
    while (done < padded) {
        size_t want = size_t(std::min<uint64_t>(buf.size(), padded - done));
        tar.read_exact(buf.data(), want);
        if (out && done < size) {
            size_t useful = size_t(std::min<uint64_t>(want, size - done));
            if (std::fwrite(buf.data(), 1, useful, out) != useful) {
                throw DataError(out_path + ": write failed: " + std::strerror(errno));
            }
        }
        done += want;
    }
}

}  // namespace

std::vector<RemoteFile> official_files(DatasetKind kind) {
    switch (kind) {
        case DatasetKind::Mnist: {
            const std::string b = kMnistBase;
            return {{"train-images-idx3-ubyte.gz", b + "train-images-idx3-ubyte.gz",
                     "f68b3c2dcbeaaa9fbdd348bbdeb94873"},
                    {"train-labels-idx1-ubyte.gz", b + "train-labels-idx1-ubyte.gz",
                     "d53e105ee54ea40749a09fcbcd1e9432"},
                    {"t10k-images-idx3-ubyte.gz", b + "t10k-images-idx3-ubyte.gz",
                     "9fb629c4189551a2d022fa330f9573f3"},
                    {"t10k-labels-idx1-ubyte.gz", b + "t10k-labels-idx1-ubyte.gz",
                     "ec29112dd5afa0611ce80d1b7f02629c"}};
        }
        case DatasetKind::FashionMnist: {
            const std::string b = kFashionBase;
            return {{"train-images-idx3-ubyte.gz", b + "train-images-idx3-ubyte.gz",
                     "8d4fb7e6c68d591d4c3dfef9ec88bf0d"},
                    {"train-labels-idx1-ubyte.gz", b + "train-labels-idx1-ubyte.gz",
                     "25c81989df183df01b3e8a0aad5dffbe"},
                    {"t10k-images-idx3-ubyte.gz", b + "t10k-images-idx3-ubyte.gz",
                     "bef4ecab320f06d8554ea6380940ec79"},
                    {"t10k-labels-idx1-ubyte.gz", b + "t10k-labels-idx1-ubyte.gz",
                     "bb300cfdad3c16e7a12a480ee83cd310"}};
        }
        case DatasetKind::Cifar10:
            return {{"cifar-10-binary.tar.gz", kCifarUrl, kCifarMd5}};
    }
    return {};
}

std::string replace_url_base(const std::string& url, const std::string& base) {
    const size_t slash = url.rfind('/');
    const std::string file = slash == std::string::npos ? url : url.substr(slash + 1);
    if (base.empty()) return url;
    return base.back() == '/' ? base + file : base + "/" + file;
}

void fetch_files(const std::vector<RemoteFile>& files, const std::string& dir,
                 const ProgressFn& progress) {
    make_dir(dir);
    for (const auto& file : files) {
        if (file.name.empty() || file.name.find('/') != std::string::npos || file.name == "." ||
            file.name == "..") {
            throw DataError("fetch: invalid file name '" + file.name + "' for " + file.url);
        }
        const std::string target = (fs::path(dir) / file.name).string();
        const std::string want = lower(file.md5);
        std::error_code ec;
        if (fs::is_regular_file(target, ec)) {
            const std::string have = md5_file(target);
            if (!want.empty() && have == want) {
                say(progress, file.name + ": already present, md5 ok");
                continue;
            }
            say(progress, file.name + ": present but md5 is " + have + ", expected " + want +
                              "; downloading again");
        }
        const std::string tmp =
            (fs::path(dir) / ("." + file.name + ".part-" + std::to_string(getpid()))).string();
        TempFile guard(tmp);
        say(progress, file.name + ": downloading " + file.url);
        // curl would wait forever on a FIFO of a file:// mirror (no writer), and "downloads" a
        // directory as an empty file: only a regular file is fetched from a local mirror.
        if (file.url.rfind("file://", 0) == 0) {
            std::string local = file.url.substr(7);
            if (local.rfind("localhost/", 0) == 0) local.erase(0, 9);
            if (fs::exists(local, ec) && !fs::is_regular_file(local, ec)) {
                throw DataError(target + ": " + local + " of the mirror is not a regular file");
            }
        }
        CurlResult r = run_curl(file.url, tmp);
        if (r.exit_code != 0) {
            throw DataError(target + ": download from " + file.url + " failed (curl exit code " +
                            std::to_string(r.exit_code) +
                            (r.stderr_text.empty() ? "" : ": " + r.stderr_text) + ")");
        }
        if (!fs::is_regular_file(tmp, ec)) {
            throw DataError(target + ": curl reported success but wrote no file for " + file.url);
        }
        const std::string got = md5_file(tmp);
        if (want.empty()) {
            say(progress, file.name + ": no md5 to check against (got " + got + ")");
        } else if (got != want) {
            throw DataError(target + ": md5 mismatch: expected " + want + ", got " + got +
                            " (downloaded from " + file.url + "); the download was deleted");
        }
        // rename() within one folder is atomic: readers see either no file or the verified one.
        if (std::rename(tmp.c_str(), target.c_str()) != 0) {
            throw DataError(target +
                            ": cannot move the download into place: " + std::strerror(errno));
        }
        guard.release();
        say(progress, file.name + ": ok (" + std::to_string(fs::file_size(target, ec)) +
                          " bytes, md5 " + got + ")");
    }
}

void extract_tar(const std::string& archive, const std::string& dest_dir,
                 const std::vector<std::string>& members, const ProgressFn& progress) {
    std::set<std::string> wanted;
    for (const auto& m : members) wanted.insert(normalise_member(m));
    std::set<std::string> found;
    TarStream tar(archive);
    std::string next_name;  // from a preceding GNU 'L' or pax 'x' header
    uint8_t h[kTarBlock];
    while (true) {
        const uint64_t header_offset = tar.offset();
        size_t got = tar.read_some(h, kTarBlock);
        if (got == 0) break;  // tolerated: some writers omit the end-of-archive zero blocks
        if (got < kTarBlock)
            throw DataError(archive + ": tar archive is truncated inside the header at byte " +
                            std::to_string(header_offset));
        bool all_zero = true;
        for (uint8_t b : h) all_zero = all_zero && b == 0;
        if (all_zero) break;

        uint64_t stored_sum = 0;
        if (!parse_number(h + 148, 8, stored_sum)) {
            throw DataError(archive +
                            ": not a tar archive, or corrupt (unreadable header checksum at byte " +
                            std::to_string(header_offset) + ")");
        }
        // The checksum is the byte sum with the checksum field read as spaces; old tars summed
        // signed chars.
        uint64_t unsigned_sum = 0;
        int64_t signed_sum = 0;
        for (size_t i = 0; i < kTarBlock; ++i) {
            uint8_t b = (i >= 148 && i < 156) ? uint8_t(' ') : h[i];
            unsigned_sum += b;
            signed_sum += static_cast<int8_t>(b);
        }
        if (stored_sum != unsigned_sum && int64_t(stored_sum) != signed_sum) {
            throw DataError(archive + ": tar header checksum mismatch at byte " +
                            std::to_string(header_offset) + " (stored " +
                            std::to_string(stored_sum) + ", computed " +
                            std::to_string(unsigned_sum) + "): corrupt archive");
        }
        uint64_t size = 0;
        if (!parse_number(h + 124, 12, size)) {
            throw DataError(archive + ": unreadable member size in the tar header at byte " +
                            std::to_string(header_offset));
        }
        const char type = static_cast<char>(h[156]);
        std::string name = field_str(h, 100);
        if (std::memcmp(h + 257, "ustar", 5) == 0) {
            const std::string prefix = field_str(h + 345, 155);
            if (!prefix.empty()) name = prefix + "/" + name;
        }
        if (type == 'L') {
            next_name = read_member_text(tar, size);
            while (!next_name.empty() && next_name.back() == '\0') next_name.pop_back();
            continue;
        }
        if (type == 'x') {
            next_name = pax_path(read_member_text(tar, size));
            continue;
        }
        if (!next_name.empty()) name = next_name;
        next_name.clear();
        name = normalise_member(name);

        const bool regular = type == '0' || type == '\0' || type == '7';
        if (!regular || !wanted.count(name)) {
            copy_member(tar, size, nullptr, "");
            continue;
        }
        const fs::path out = fs::path(dest_dir) / name;
        make_dir(out.parent_path().string());
        const std::string tmp = out.string() + ".part-" + std::to_string(getpid());
        TempFile guard(tmp);
        std::FILE* f = std::fopen(tmp.c_str(), "wb");
        if (!f) throw DataError(tmp + ": cannot create: " + std::strerror(errno));
        try {
            copy_member(tar, size, f, tmp);
        } catch (...) {
            std::fclose(f);
            throw;
        }
        if (std::fclose(f) != 0) throw DataError(tmp + ": write failed: " + std::strerror(errno));
        if (std::rename(tmp.c_str(), out.string().c_str()) != 0) {
            throw DataError(out.string() + ": cannot move into place: " + std::strerror(errno));
        }
        guard.release();
        found.insert(name);
        say(progress, "extracted " + name + " (" + std::to_string(size) + " bytes)");
    }
    for (const auto& w : wanted) {
        if (!found.count(w))
            throw DataError(archive + ": member " + w + " not found in the tar archive");
    }
}

void fetch_cifar10(const RemoteFile& archive, const std::string& dir, const ProgressFn& progress) {
    const std::vector<std::string> stems = {"data_batch_1", "data_batch_2", "data_batch_3",
                                            "data_batch_4", "data_batch_5", "test_batch"};
    std::vector<std::string> members;
    bool complete = true;
    for (const auto& s : stems) {
        members.push_back(std::string(kCifarBatchDir) + "/" + s + ".bin");
        std::error_code ec;
        const fs::path p = fs::path(dir) / members.back();
        const auto size = fs::is_regular_file(p, ec) ? fs::file_size(p, ec) : 0;
        complete = complete && !ec && size > 0 && size % kCifarRecordBytes == 0;
    }
    members.push_back(std::string(kCifarBatchDir) + "/batches.meta.txt");
    if (complete) {
        say(progress, std::string(kCifarBatchDir) + ": already extracted in " + dir);
        return;
    }
    fetch_files({archive}, dir, progress);
    const std::string archive_path = (fs::path(dir) / archive.name).string();
    extract_tar(archive_path, dir, members, progress);
    // The loader never reads the archive; the extracted batches are what "already present" is
    // judged on.
    std::remove(archive_path.c_str());
    say(progress, "cifar10: ready in " + (fs::path(dir) / kCifarBatchDir).string());
}

void fetch_dataset(DatasetKind kind, const std::string& dir, const ProgressFn& progress,
                   const std::string& base_url_override) {
    std::vector<RemoteFile> files = official_files(kind);
    if (!base_url_override.empty()) {
        for (auto& f : files) f.url = replace_url_base(f.url, base_url_override);
    }
    if (kind == DatasetKind::Cifar10) {
        fetch_cifar10(files.front(), dir, progress);
    } else {
        fetch_files(files, dir, progress);
        say(progress, to_string(kind) + ": ready in " + dir);
    }
}

}  // namespace krause
