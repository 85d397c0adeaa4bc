// Loaders for the IDX (MNIST, Fashion-MNIST) and CIFAR-10 binary formats, with strict validation.
// Everything is checked against the headers before the output is built, so a bad file never yields
// a half dataset.
#include "data/dataset.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace krause {

namespace fs = std::filesystem;

namespace {

constexpr uint32_t kIdxImagesMagic = 0x00000803;
constexpr uint32_t kIdxLabelsMagic = 0x00000801;
constexpr int64_t kMnistSide = 28;
constexpr int64_t kMaxIdxCount = 1000000;  // the real files hold 60000; more means a corrupt header
constexpr int64_t kCifarSide = 32;
constexpr int64_t kCifarImageBytes = kCifarSide * kCifarSide * 3;
constexpr int64_t kCifarRecordBytes = 1 + kCifarImageBytes;
constexpr int64_t kMaxCifarRecords = 100000;  // the official batches hold 10000 each
constexpr int kNumClasses = 10;

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::string hex32(uint32_t v) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%08x", v);
    return buf;
}

uint32_t be32(const uint8_t* p) {
    return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

std::string fetch_hint(DatasetKind kind, const std::string& dir) {
    const std::string name = to_string(kind);
    return "run `krause data fetch " + name + " --dir " + (dir.empty() ? "DIR" : dir) +
           "`, or pass --data " + name + ":DIR";
}

[[noreturn]] void fail(const std::string& path, const std::string& what) {
    throw DataError(path + ": " + what);
}

// First candidate that exists, or "" (the caller reports every name it tried).
std::string find_first(const std::string& dir, const std::vector<std::string>& names) {
    for (const auto& n : names) {
        fs::path p = fs::path(dir) / n;
        std::error_code ec;
        if (fs::is_regular_file(p, ec)) return p.string();
    }
    return "";
}

[[noreturn]] void fail_missing(DatasetKind kind, const std::string& dir,
                               const std::vector<std::string>& names) {
    std::string msg = (fs::path(dir) / names.front()).string() + ": missing";
    if (names.size() > 1) {
        msg += " (also looked for";
        for (size_t i = 1; i < names.size(); ++i) msg += (i == 1 ? " " : ", ") + names[i];
        msg += ")";
    }
    throw DataError(msg + "; " + fetch_hint(kind, dir));
}

void check_dir(DatasetKind kind, const std::string& dir) {
    if (dir.empty())
        throw DataError("no data folder given for " + to_string(kind) + "; " +
                        fetch_hint(kind, dir));
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
        fail(dir, "data folder does not exist; " + fetch_hint(kind, dir));
}

// Reads exactly `expected` more bytes; a short or long stream is reported with both sizes.
std::vector<uint8_t> read_body(GzipReader& reader, size_t header_bytes, size_t expected,
                               const std::string& what) {
    std::vector<uint8_t> body;
    body.reserve(std::min<size_t>(expected, size_t(64) << 20));
    reader.read_into(body, expected);
    const std::string gz = reader.gzipped() ? " after gunzip" : "";
    if (body.size() < expected) {
        fail(reader.path(), "truncated: expected " + std::to_string(header_bytes + expected) +
                                " bytes (" + what + "), got " +
                                std::to_string(header_bytes + body.size()) + gz);
    }
    uint8_t extra[4096];
    size_t trailing = 0, got;
    while ((got = reader.read(extra, sizeof extra)) > 0) trailing += got;
    if (trailing > 0) {
        fail(reader.path(), "size mismatch: expected " + std::to_string(header_bytes + expected) +
                                " bytes (" + what + "), got " +
                                std::to_string(header_bytes + expected + trailing) + gz);
    }
    return body;
}

void check_labels(const std::string& path, const uint8_t* labels, size_t n, size_t stride) {
    for (size_t i = 0; i < n; ++i) {
        uint8_t v = labels[i * stride];
        if (v >= kNumClasses) {
            fail(path, "label " + std::to_string(v) + " of item " + std::to_string(i) +
                           " is out of range 0..9");
        }
    }
}

struct IdxContent {
    int64_t count = 0;
    std::vector<uint8_t> body;
};

IdxContent read_idx(const std::string& path, bool images) {
    GzipReader reader(path);
    const size_t header_bytes = images ? 16 : 8;
    uint8_t h[16];
    // The magic is checked on its own first, so a wrong kind of file is reported as such even when
    // short.
    size_t got = reader.read(h, 4);
    const uint32_t magic = got == 4 ? be32(h) : 0;
    const uint32_t want_magic = images ? kIdxImagesMagic : kIdxLabelsMagic;
    if (magic != want_magic) {
        std::string msg = "wrong magic number " + hex32(magic) + ", expected " + hex32(want_magic) +
                          " (IDX " + (images ? "images" : "labels") + " file)";
        if (magic == (images ? kIdxLabelsMagic : kIdxImagesMagic)) {
            msg +=
                std::string("; this looks like an IDX ") + (images ? "labels" : "images") + " file";
        }
        fail(path,
             got < 4 ? "too short for an IDX header: " + std::to_string(got) + " bytes" : msg);
    }
    got += reader.read(h + 4, header_bytes - 4);
    if (got < header_bytes) {
        fail(path, "too short for an IDX header: " + std::to_string(got) +
                       " bytes, expected at least " + std::to_string(header_bytes));
    }
    IdxContent out;
    out.count = be32(h + 4);
    if (out.count <= 0 || out.count > kMaxIdxCount) {
        fail(path, "implausible item count " + std::to_string(out.count) +
                       " in the header (expected 1.." + std::to_string(kMaxIdxCount) + ")");
    }
    int64_t per_item = 1;
    std::string what = std::to_string(header_bytes) + "-byte header + " + std::to_string(out.count);
    if (images) {
        const int64_t rows = be32(h + 8), cols = be32(h + 12);
        if (rows != kMnistSide || cols != kMnistSide) {
            fail(path, "images are " + std::to_string(rows) + "x" + std::to_string(cols) +
                           ", expected 28x28");
        }
        per_item = rows * cols;
        what += " images of 28x28";
    } else {
        what += " labels";
    }
    out.body = read_body(reader, header_bytes, size_t(out.count * per_item), what);
    if (!images) check_labels(path, out.body.data(), out.body.size(), 1);
    return out;
}

std::vector<std::string> idx_names(Split split, bool images) {
    const std::string prefix = split == Split::Train ? "train" : "t10k";
    const std::string kind = images ? "images" : "labels";
    const std::string idx = images ? "idx3-ubyte" : "idx1-ubyte";
    return {prefix + "-" + kind + "-" + idx + ".gz", prefix + "-" + kind + "-" + idx,
            prefix + "-" + kind + "." + idx + ".gz", prefix + "-" + kind + "." + idx};
}

Dataset load_idx_dataset(const DatasetSpec& spec, Split split, int64_t limit) {
    check_dir(spec.kind, spec.dir);
    const auto label_names = idx_names(split, false);
    const auto image_names = idx_names(split, true);
    const std::string labels_path = find_first(spec.dir, label_names);
    if (labels_path.empty()) fail_missing(spec.kind, spec.dir, label_names);
    const std::string images_path = find_first(spec.dir, image_names);
    if (images_path.empty()) fail_missing(spec.kind, spec.dir, image_names);

    IdxContent labels = read_idx(labels_path, false);
    IdxContent images = read_idx(images_path, true);
    if (labels.count != images.count) {
        fail(images_path, "holds " + std::to_string(images.count) + " images but " + labels_path +
                              " holds " + std::to_string(labels.count) + " labels");
    }
    Dataset ds;
    ds.kind = spec.kind;
    ds.split = split;
    ds.height = kMnistSide;
    ds.width = kMnistSide;
    ds.channels = 1;
    const int64_t n = limit > 0 ? std::min(limit, images.count) : images.count;
    // IDX pixels are already row-major single-channel, which is the token order: the body becomes
    // the tokens.
    ds.tokens = std::move(images.body);
    ds.tokens.resize(size_t(n * ds.seq_len()));
    ds.labels = std::move(labels.body);
    ds.labels.resize(size_t(n));
    if (n < images.count) {
        ds.tokens.shrink_to_fit();
        ds.labels.shrink_to_fit();
    }
    return ds;
}

std::vector<std::string> cifar_stems(Split split) {
    if (split == Split::Test) return {"test_batch"};
    std::vector<std::string> stems;
    for (int i = 1; i <= 5; ++i) stems.push_back("data_batch_" + std::to_string(i));
    return stems;
}

std::string cifar_batch_dir(const std::string& dir) {
    for (const char* probe :
         {"data_batch_1.bin", "data_batch_1.bin.gz", "test_batch.bin", "test_batch.bin.gz"}) {
        std::error_code ec;
        if (fs::exists(fs::path(dir) / probe, ec)) return dir;
    }
    fs::path nested = fs::path(dir) / "cifar-10-batches-bin";
    std::error_code ec;
    if (fs::is_directory(nested, ec)) return nested.string();
    return dir;
}

// One CIFAR batch file, validated in full, converted in place from planar records to interleaved
// tokens. keep: how many leading records to convert and return (the rest are only validated).
void read_cifar_file(const std::string& path, int64_t keep, std::vector<uint8_t>& tokens,
                     std::vector<uint8_t>& labels, int64_t& records_in_file) {
    std::vector<uint8_t> raw =
        read_maybe_gzipped(path, size_t(kMaxCifarRecords * kCifarRecordBytes));
    if (raw.empty() || raw.size() % size_t(kCifarRecordBytes) != 0) {
        fail(path, "size " + std::to_string(raw.size()) +
                       " bytes is not a positive multiple of the " +
                       std::to_string(kCifarRecordBytes) +
                       "-byte CIFAR-10 record (1 label + 3072 pixels)");
    }
    const int64_t n = int64_t(raw.size()) / kCifarRecordBytes;
    records_in_file = n;
    check_labels(path, raw.data(), size_t(n), size_t(kCifarRecordBytes));
    keep = std::min(keep, n);
    labels.resize(size_t(keep));
    // Record r's output [r*3072, (r+1)*3072) never reaches record r+1's input, so a per-record copy
    // suffices.
    std::vector<uint8_t> planar(static_cast<size_t>(kCifarImageBytes));
    const int64_t plane = kCifarSide * kCifarSide;
    for (int64_t r = 0; r < keep; ++r) {
        const uint8_t* rec = raw.data() + r * kCifarRecordBytes;
        labels[size_t(r)] = rec[0];
        std::memcpy(planar.data(), rec + 1, size_t(kCifarImageBytes));
        uint8_t* dst = raw.data() + r * kCifarImageBytes;
        for (int64_t p = 0; p < plane; ++p) {
            dst[3 * p + 0] = planar[size_t(p)];
            dst[3 * p + 1] = planar[size_t(plane + p)];
            dst[3 * p + 2] = planar[size_t(2 * plane + p)];
        }
    }
    raw.resize(size_t(keep * kCifarImageBytes));
    if (keep < n) raw.shrink_to_fit();
    tokens = std::move(raw);
}

Dataset load_cifar_dataset(const DatasetSpec& spec, Split split, int64_t limit) {
    check_dir(spec.kind, spec.dir);
    const std::string batch_dir = cifar_batch_dir(spec.dir);
    std::vector<std::string> paths;
    for (const auto& stem : cifar_stems(split)) {
        std::vector<std::string> names = {stem + ".bin", stem + ".bin.gz"};
        std::string p = find_first(batch_dir, names);
        if (p.empty()) fail_missing(spec.kind, batch_dir, names);
        paths.push_back(p);
    }
    std::vector<std::vector<uint8_t>> token_parts(paths.size()), label_parts(paths.size());
    int64_t remaining = limit > 0 ? limit : INT64_MAX;
    int64_t total_kept = 0;
    for (size_t i = 0; i < paths.size(); ++i) {
        int64_t in_file = 0;
        read_cifar_file(paths[i], remaining, token_parts[i], label_parts[i], in_file);
        const int64_t kept = int64_t(label_parts[i].size());
        remaining -= kept;
        total_kept += kept;
    }
    Dataset ds;
    ds.kind = spec.kind;
    ds.split = split;
    ds.height = kCifarSide;
    ds.width = kCifarSide;
    ds.channels = 3;
    if (paths.size() == 1) {
        ds.tokens = std::move(token_parts[0]);
        ds.labels = std::move(label_parts[0]);
        return ds;
    }
    ds.tokens.reserve(size_t(total_kept * kCifarImageBytes));
    ds.labels.reserve(size_t(total_kept));
    for (size_t i = 0; i < paths.size(); ++i) {
        ds.tokens.insert(ds.tokens.end(), token_parts[i].begin(), token_parts[i].end());
        ds.labels.insert(ds.labels.end(), label_parts[i].begin(), label_parts[i].end());
        std::vector<uint8_t>().swap(token_parts[i]);  // free each part as soon as it is copied
    }
    return ds;
}

}  // namespace

std::string to_string(DatasetKind kind) {
    switch (kind) {
        case DatasetKind::Mnist:
            return "mnist";
        case DatasetKind::FashionMnist:
            return "fashion-mnist";
        case DatasetKind::Cifar10:
            return "cifar10";
    }
    return "unknown";
}

std::string to_string(Split split) {
    return split == Split::Train ? "train" : "test";
}

DatasetKind parse_dataset_kind(const std::string& name) {
    const std::string n = lower(name);
    if (n == "mnist") return DatasetKind::Mnist;
    if (n == "fashion-mnist" || n == "fashion_mnist") return DatasetKind::FashionMnist;
    if (n == "cifar10" || n == "cifar-10") return DatasetKind::Cifar10;
    throw std::invalid_argument(
        "unknown dataset '" + name +
        "': expected one of mnist, fashion-mnist (fashion_mnist), cifar10 (cifar-10)");
}

int64_t official_size(DatasetKind kind, Split split) {
    if (split == Split::Test) return 10000;
    return kind == DatasetKind::Cifar10 ? 50000 : 60000;
}

namespace {

std::string grouped(int64_t n) {  // 8068 -> "8,068"
    std::string digits = std::to_string(n), out;
    for (size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}

}  // namespace

std::string describe_loaded(const DatasetSpec& spec, int64_t n_train, int64_t n_test,
                            int64_t train_limit, int64_t test_limit) {
    auto images = [&](int64_t n, int64_t limit, Split split) {
        const int64_t official = official_size(spec.kind, split);
        const int64_t asked = limit > 0 ? std::min(limit, official) : official;
        std::string text =
            grouped(n) + (split == Split::Train ? " training images" : " test images");
        if (n < asked) text += " (of " + grouped(official) + " in the official files)";
        return text;
    };
    return to_string(spec.kind) + " from " + spec.dir + ": " +
           images(n_train, train_limit, Split::Train) + " and " +
           images(n_test, test_limit, Split::Test);
}

std::string default_subdir(DatasetKind kind) {
    switch (kind) {
        case DatasetKind::Mnist:
            return "mnist";
        case DatasetKind::FashionMnist:
            return "fashion-mnist";
        case DatasetKind::Cifar10:
            return "cifar-10";
    }
    return "";
}

bool dataset_files_present(DatasetKind kind, const std::string& dir) {
    std::error_code ec;
    if (dir.empty() || !fs::is_directory(dir, ec)) return false;
    for (Split split : {Split::Train, Split::Test}) {
        if (kind == DatasetKind::Cifar10) {
            const std::string batches = cifar_batch_dir(dir);
            for (const auto& stem : cifar_stems(split)) {
                if (find_first(batches, {stem + ".bin", stem + ".bin.gz"}).empty()) return false;
            }
        } else {
            for (bool images : {false, true}) {
                if (find_first(dir, idx_names(split, images)).empty()) return false;
            }
        }
    }
    return true;
}

Dataset load_dataset(const DatasetSpec& spec, Split split, int64_t limit) {
    if (limit < 0)
        throw std::invalid_argument("load_dataset: limit must be >= 0, got " +
                                    std::to_string(limit));
    if (spec.kind == DatasetKind::Cifar10) return load_cifar_dataset(spec, split, limit);
    return load_idx_dataset(spec, split, limit);
}

}  // namespace krause
