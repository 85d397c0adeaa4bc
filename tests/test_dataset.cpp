// Tests for gzip reading and the MNIST / Fashion-MNIST / CIFAR-10 loaders: generated files, every
// kind of corruption, and (when KRAUSE_DATA_DIR is set) the real files checked against SOURCES.md.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "data/checksum.h"
#include "data/dataset.h"
#include "data/gzip_file.h"
#include "data_env.h"

namespace krause {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

#define REQUIRE_DATA_DIR()                                                                     \
    const char* data_root = std::getenv("KRAUSE_DATA_DIR");                                    \
    if (data_root == nullptr || *data_root == '\0') {                                          \
        GTEST_SKIP()                                                                           \
            << "KRAUSE_DATA_DIR not set: point it at the folder holding mnist/ and cifar-10/"; \
    }

class TempDir {
public:
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "krause-data-XXXXXX").string();
        path_ = mkdtemp(tmpl.data());
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    std::string operator/(const std::string& name) const {
        return (fs::path(path_) / name).string();
    }
    const std::string& str() const { return path_; }

private:
    std::string path_;
};

void write_file(const std::string& path, const Bytes& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

Bytes gz(const Bytes& b) {
    return gzip_compress(b.data(), b.size());
}

void put_be32(Bytes& b, uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(uint8_t(v >> s));
}

uint8_t pixel_value(uint32_t i, uint32_t p) {
    return uint8_t((i * 31 + p * 7) & 0xff);
}

Bytes idx_images(uint32_t n, uint32_t rows = 28, uint32_t cols = 28, uint32_t magic = 0x803) {
    Bytes b;
    put_be32(b, magic);
    put_be32(b, n);
    put_be32(b, rows);
    put_be32(b, cols);
    for (uint32_t i = 0; i < n; ++i) {
        for (uint32_t p = 0; p < rows * cols; ++p) b.push_back(pixel_value(i, p));
    }
    return b;
}

Bytes idx_labels(uint32_t n, uint32_t magic = 0x801) {
    Bytes b;
    put_be32(b, magic);
    put_be32(b, n);
    for (uint32_t i = 0; i < n; ++i) b.push_back(uint8_t(i % 10));
    return b;
}

// A folder with a valid MNIST-style test split of n images (images gzipped, labels plain by
// default).
void write_idx_split(const TempDir& dir, uint32_t n, bool gzip_images = true,
                     bool gzip_labels = false) {
    write_file(dir / (gzip_images ? "t10k-images-idx3-ubyte.gz" : "t10k-images-idx3-ubyte"),
               gzip_images ? gz(idx_images(n)) : idx_images(n));
    write_file(dir / (gzip_labels ? "t10k-labels-idx1-ubyte.gz" : "t10k-labels-idx1-ubyte"),
               gzip_labels ? gz(idx_labels(n)) : idx_labels(n));
}

// Every needle must appear in the DataError message.
void expect_data_error(const std::function<void()>& fn, const std::vector<std::string>& needles) {
    try {
        fn();
        ADD_FAILURE() << "expected DataError";
    } catch (const DataError& e) {
        const std::string msg = e.what();
        for (const auto& n : needles)
            EXPECT_NE(msg.find(n), std::string::npos) << "missing '" << n << "' in: " << msg;
    }
}

DatasetSpec mnist_at(const TempDir& d) {
    return DatasetSpec{DatasetKind::Mnist, d.str()};
}

// CIFAR records: label, then R, G, B planes; channel c of pixel p holds (i + p + 80c) mod 256.
Bytes cifar_records(uint32_t n, uint8_t first_label = 0) {
    Bytes b;
    for (uint32_t i = 0; i < n; ++i) {
        b.push_back(uint8_t((first_label + i) % 10));
        for (uint32_t c = 0; c < 3; ++c) {
            for (uint32_t p = 0; p < 1024; ++p) b.push_back(uint8_t((i + p + 80 * c) & 0xff));
        }
    }
    return b;
}

// ---- gzip_file ----

TEST(GzipFile, PlainAndGzippedReadIdentically) {
    TempDir d;
    Bytes data = idx_images(3);
    write_file(d / "plain", data);
    write_file(d / "packed.gz", gz(data));
    EXPECT_EQ(read_maybe_gzipped(d / "plain", 1 << 20), data);
    EXPECT_EQ(read_maybe_gzipped(d / "packed.gz", 1 << 20), data);
}

TEST(GzipFile, ConcatenatedMembersAreOneStream) {
    TempDir d;
    Bytes a = {1, 2, 3}, b = {4, 5};
    Bytes both = gz(a), second = gz(b);
    both.insert(both.end(), second.begin(), second.end());
    write_file(d / "two.gz", both);
    EXPECT_EQ(read_maybe_gzipped(d / "two.gz", 100), (Bytes{1, 2, 3, 4, 5}));
}

TEST(GzipFile, OversizedContentRefused) {
    TempDir d;
    write_file(d / "big.gz", gz(Bytes(1000, 7)));
    EXPECT_EQ(read_maybe_gzipped(d / "big.gz", 1000).size(), 1000u);
    expect_data_error([&] { read_maybe_gzipped(d / "big.gz", 999); },
                      {d / "big.gz", "larger than the limit of 999"});
}

TEST(GzipFile, TruncatedAndCorruptStreamsNameTheFile) {
    TempDir d;
    Bytes packed = gz(idx_images(4));
    write_file(d / "cut.gz", Bytes(packed.begin(), packed.begin() + long(packed.size() / 2)));
    expect_data_error([&] { read_maybe_gzipped(d / "cut.gz", 1 << 20); },
                      {d / "cut.gz", "truncated"});
    Bytes bad = packed;
    for (size_t i = 12; i < 40; ++i) bad[i] ^= 0x5a;
    write_file(d / "bad.gz", bad);
    expect_data_error([&] { read_maybe_gzipped(d / "bad.gz", 1 << 20); }, {d / "bad.gz", "gzip"});
    Bytes garbage = packed;
    garbage.push_back('x');
    write_file(d / "tail.gz", garbage);
    expect_data_error([&] { read_maybe_gzipped(d / "tail.gz", 1 << 20); },
                      {d / "tail.gz", "after the end"});
}

TEST(GzipFile, MissingFileNamesTheFile) {
    expect_data_error([] { read_maybe_gzipped("/nonexistent/krause/file.gz", 10); },
                      {"/nonexistent/krause/file.gz", "cannot open"});
}

// ---- names and specs ----

TEST(DatasetSpec, ParsesNamesAndAliases) {
    EXPECT_EQ(parse_dataset_kind("mnist"), DatasetKind::Mnist);
    EXPECT_EQ(parse_dataset_kind("fashion-mnist"), DatasetKind::FashionMnist);
    EXPECT_EQ(parse_dataset_kind("fashion_mnist"), DatasetKind::FashionMnist);
    EXPECT_EQ(parse_dataset_kind("cifar10"), DatasetKind::Cifar10);
    EXPECT_EQ(parse_dataset_kind("CIFAR-10"), DatasetKind::Cifar10);
    for (auto k : {DatasetKind::Mnist, DatasetKind::FashionMnist, DatasetKind::Cifar10}) {
        EXPECT_EQ(parse_dataset_kind(to_string(k)), k);
    }
    try {
        parse_dataset_kind("imagenet");
        FAIL() << "expected invalid_argument";
    } catch (const std::invalid_argument& e) {
        const std::string msg = e.what();
        for (const char* n : {"imagenet", "mnist", "fashion-mnist", "cifar10"})
            EXPECT_NE(msg.find(n), std::string::npos);
    }
}

TEST(DatasetSpec, FashionMnistFoundWithoutPath) {
    const std::string system_dir = "/usr/share/datasets/fashion-mnist";
    if (!fs::is_directory(system_dir))
        GTEST_SKIP() << system_dir << " not present (package dataset-fashion-mnist)";
    // Nothing of the user's own folders may come first (see test_data_dirs.cpp for the order).
    TempDir isolated;
    test::IsolatedDataSearch search(isolated.str());
    auto spec = parse_dataset_spec("fashion-mnist");
    EXPECT_EQ(spec.dir, system_dir);
    Dataset test = load_dataset(spec, Split::Test, 0);
    EXPECT_EQ(test.size(), 10000);
    EXPECT_EQ(test.seq_len(), 784);
    std::vector<int> hist(10, 0);
    for (uint8_t l : test.labels) ++hist[l];
    for (int c = 0; c < 10; ++c)
        EXPECT_EQ(hist[size_t(c)], 1000) << "class " << c;  // Fashion-MNIST is balanced
    EXPECT_EQ(load_dataset(spec, Split::Train, 50).size(), 50);
}

// ---- generated IDX files ----

TEST(DatasetSpec, LoadedDataDescribedWithTheOfficialCountWhenShort) {
    EXPECT_EQ(official_size(DatasetKind::Cifar10, Split::Train), 50000);
    EXPECT_EQ(official_size(DatasetKind::FashionMnist, Split::Train), 60000);
    EXPECT_EQ(official_size(DatasetKind::Mnist, Split::Test), 10000);
    const DatasetSpec cifar{DatasetKind::Cifar10, "/d/cifar-10"};
    EXPECT_EQ(describe_loaded(cifar, 8068, 500, 0, 500),
              "cifar10 from /d/cifar-10: 8,068 training images (of 50,000 in the official "
              "files) and 500 test images");
    EXPECT_EQ(describe_loaded(cifar, 8068, 1017, 0, 0),
              "cifar10 from /d/cifar-10: 8,068 training images (of 50,000 in the official "
              "files) and 1,017 test images (of 10,000 in the official files)");
    // Fewer images because fewer were asked for: nothing is missing.
    EXPECT_EQ(describe_loaded(cifar, 1000, 10000, 1000, 0),
              "cifar10 from /d/cifar-10: 1,000 training images and 10,000 test images");
    EXPECT_EQ(describe_loaded(cifar, 900, 16, 1000, 16),
              "cifar10 from /d/cifar-10: 900 training images (of 50,000 in the official files) "
              "and 16 test images");
    const DatasetSpec mnist{DatasetKind::Mnist, "m"};
    EXPECT_EQ(describe_loaded(mnist, 60000, 10000, 0, 0),
              "mnist from m: 60,000 training images and 10,000 test images");
    EXPECT_EQ(describe_loaded(mnist, 60000, 10000, 100000, 20000),
              "mnist from m: 60,000 training images and 10,000 test images");
}

TEST(IdxLoader, GzippedAndPlainGiveTheSameData) {
    TempDir a, b, c;
    write_idx_split(a, 12, true, false);
    write_idx_split(b, 12, false, true);
    write_file(c / "t10k-images.idx3-ubyte", idx_images(12));  // the dotted names some mirrors use
    write_file(c / "t10k-labels.idx1-ubyte", idx_labels(12));
    Dataset da = load_dataset(mnist_at(a), Split::Test);
    ASSERT_EQ(da.size(), 12);
    EXPECT_EQ(da.height, 28);
    EXPECT_EQ(da.channels, 1);
    EXPECT_EQ(da.tokens.size(), 12u * 784u);
    for (uint32_t i = 0; i < 12; ++i) {
        EXPECT_EQ(da.labels[i], i % 10);
        EXPECT_EQ(da.image(i)[0], pixel_value(i, 0));
        EXPECT_EQ(da.image(i)[783], pixel_value(i, 783));
    }
    for (const TempDir* d : {&b, &c}) {
        Dataset other = load_dataset(mnist_at(*d), Split::Test);
        EXPECT_EQ(other.tokens, da.tokens);
        EXPECT_EQ(other.labels, da.labels);
    }
}

TEST(IdxLoader, LimitHonoured) {
    TempDir d;
    write_idx_split(d, 20);
    Dataset ds = load_dataset(mnist_at(d), Split::Test, 7);
    EXPECT_EQ(ds.size(), 7);
    EXPECT_EQ(ds.tokens.size(), 7u * 784u);
    EXPECT_EQ(ds.image(6)[100], pixel_value(6, 100));
    EXPECT_EQ(load_dataset(mnist_at(d), Split::Test, 1000).size(), 20);
    // The limit does not skip validation of the rest of the file.
    write_file(d / "t10k-labels-idx1-ubyte", idx_labels(19));
    expect_data_error([&] { load_dataset(mnist_at(d), Split::Test, 5); },
                      {"20 images", "19 labels"});
}

TEST(IdxLoader, WrongMagicRejected) {
    TempDir d;
    write_idx_split(d, 3);
    write_file(d / "t10k-images-idx3-ubyte.gz", gz(idx_labels(3)));
    expect_data_error([&] { load_dataset(mnist_at(d), Split::Test); },
                      {d / "t10k-images-idx3-ubyte.gz", "wrong magic number 0x00000801",
                       "0x00000803", "labels file"});
    write_file(d / "t10k-images-idx3-ubyte.gz", gz(idx_images(3, 28, 28, 0x12345678)));
    expect_data_error([&] { load_dataset(mnist_at(d), Split::Test); },
                      {"wrong magic number 0x12345678"});
}

TEST(IdxLoader, TruncatedAndOversizedRejectedWithSizes) {
    TempDir d;
    write_idx_split(d, 3);
    Bytes img = idx_images(3);
    img.resize(img.size() - 10);
    write_file(d / "t10k-images-idx3-ubyte.gz", gz(img));
    expect_data_error(
        [&] { load_dataset(mnist_at(d), Split::Test); },
        {d / "t10k-images-idx3-ubyte.gz", "truncated", "expected 2368 bytes", "got 2358"});
    Bytes longer = idx_images(3);
    longer.push_back(0);
    write_file(d / "t10k-images-idx3-ubyte.gz", gz(longer));
    expect_data_error([&] { load_dataset(mnist_at(d), Split::Test); },
                      {"expected 2368 bytes", "got 2369"});
}

TEST(IdxLoader, DimsAndAbsurdCountsRejected) {
    TempDir d;
    write_idx_split(d, 3);
    write_file(d / "t10k-images-idx3-ubyte.gz", gz(idx_images(3, 32, 28)));
    expect_data_error([&] { load_dataset(mnist_at(d), Split::Test); }, {"32x28", "expected 28x28"});
    Bytes huge;
    put_be32(huge, 0x803);
    put_be32(huge, 0x7fffffff);
    put_be32(huge, 28);
    put_be32(huge, 28);
    write_file(d / "t10k-images-idx3-ubyte.gz", gz(huge));
    expect_data_error([&] { load_dataset(mnist_at(d), Split::Test); },
                      {"implausible item count 2147483647"});
}

TEST(IdxLoader, CountMismatchRejected) {
    TempDir d;
    write_idx_split(d, 5);
    write_file(d / "t10k-labels-idx1-ubyte", idx_labels(4));
    expect_data_error(
        [&] { load_dataset(mnist_at(d), Split::Test); },
        {d / "t10k-images-idx3-ubyte.gz", "5 images", d / "t10k-labels-idx1-ubyte", "4 labels"});
}

TEST(IdxLoader, LabelOutOfRangeRejected) {
    TempDir d;
    write_idx_split(d, 5);
    Bytes labels = idx_labels(5);
    labels[8 + 3] = 10;
    write_file(d / "t10k-labels-idx1-ubyte", labels);
    expect_data_error([&] { load_dataset(mnist_at(d), Split::Test); },
                      {d / "t10k-labels-idx1-ubyte", "label 10 of item 3", "0..9"});
}

TEST(IdxLoader, MissingFilesAndFolderNamedWithHint) {
    TempDir d;
    write_file(d / "t10k-labels-idx1-ubyte", idx_labels(2));
    expect_data_error([&] { load_dataset(mnist_at(d), Split::Test); },
                      {d / "t10k-images-idx3-ubyte.gz", "missing", "t10k-images.idx3-ubyte",
                       "krause data fetch mnist --dir " + d.str(), "--data mnist:DIR"});
    expect_data_error([&] { load_dataset(mnist_at(d), Split::Train); },
                      {d / "train-labels-idx1-ubyte.gz", "missing"});
    expect_data_error(
        [&] {
            load_dataset(DatasetSpec{DatasetKind::FashionMnist, d / "nope"}, Split::Test);
        },
        {d / "nope", "does not exist", "krause data fetch fashion-mnist"});
}

TEST(IdxLoader, BadGzipRejected) {
    TempDir d;
    write_idx_split(d, 3);
    Bytes packed = gz(idx_images(3));
    packed.resize(packed.size() - 20);
    write_file(d / "t10k-images-idx3-ubyte.gz", packed);
    expect_data_error([&] { load_dataset(mnist_at(d), Split::Test); },
                      {d / "t10k-images-idx3-ubyte.gz", "gzip"});
}

// ---- generated CIFAR-10 files ----

TEST(CifarLoader, PlanarRecordsBecomeInterleavedTokens) {
    TempDir d;
    write_file(d / "test_batch.bin", cifar_records(3, 4));
    Dataset ds = load_dataset(DatasetSpec{DatasetKind::Cifar10, d.str()}, Split::Test);
    ASSERT_EQ(ds.size(), 3);
    EXPECT_EQ(ds.height, 32);
    EXPECT_EQ(ds.width, 32);
    EXPECT_EQ(ds.channels, 3);
    EXPECT_EQ(ds.seq_len(), 3072);
    EXPECT_EQ(ds.labels, (Bytes{4, 5, 6}));
    for (int64_t i = 0; i < 3; ++i) {
        for (int64_t row : {0, 5, 31}) {
            for (int64_t col : {0, 7, 31}) {
                for (int64_t c = 0; c < 3; ++c) {
                    const int64_t p = row * 32 + col;
                    EXPECT_EQ(ds.image(i)[(row * 32 + col) * 3 + c],
                              uint8_t((i + p + 80 * c) & 0xff))
                        << "image " << i << " row " << row << " col " << col << " channel " << c;
                }
            }
        }
    }
}

TEST(CifarLoader, TrainConcatenatesBatchesFromParentFolderAndHonoursLimit) {
    TempDir d;
    fs::create_directories(d / "cifar-10-batches-bin");
    for (int b = 1; b <= 5; ++b) {
        Bytes recs = cifar_records(uint32_t(b), uint8_t(b));
        const std::string name =
            d / ("cifar-10-batches-bin/data_batch_" + std::to_string(b) + ".bin");
        if (b % 2)
            write_file(name + ".gz", gz(recs));
        else
            write_file(name, recs);
    }
    const DatasetSpec spec{DatasetKind::Cifar10, d.str()};
    Dataset all = load_dataset(spec, Split::Train);
    EXPECT_EQ(all.size(), 1 + 2 + 3 + 4 + 5);
    EXPECT_EQ(all.labels[0], 1);
    EXPECT_EQ(all.labels[1], 2);  // first record of data_batch_2
    EXPECT_EQ(all.labels[3], 3);
    Dataset some = load_dataset(spec, Split::Train, 4);
    ASSERT_EQ(some.size(), 4);
    EXPECT_EQ(some.labels, Bytes(all.labels.begin(), all.labels.begin() + 4));
    EXPECT_EQ(some.tokens, Bytes(all.tokens.begin(), all.tokens.begin() + 4 * 3072));
    expect_data_error(
        [&] { load_dataset(spec, Split::Test); },
        {d / "cifar-10-batches-bin/test_batch.bin", "missing", "krause data fetch cifar10"});
}

TEST(CifarLoader, BadSizeLabelAndGzipRejected) {
    TempDir d;
    const DatasetSpec spec{DatasetKind::Cifar10, d.str()};
    Bytes recs = cifar_records(2);
    recs.pop_back();
    write_file(d / "test_batch.bin", recs);
    expect_data_error([&] { load_dataset(spec, Split::Test); },
                      {d / "test_batch.bin", "6145 bytes", "multiple of the 3073-byte"});
    write_file(d / "test_batch.bin", Bytes());
    expect_data_error([&] { load_dataset(spec, Split::Test); }, {"0 bytes", "positive multiple"});
    recs = cifar_records(2);
    recs[3073] = 200;
    write_file(d / "test_batch.bin", recs);
    expect_data_error([&] { load_dataset(spec, Split::Test); },
                      {d / "test_batch.bin", "label 200 of item 1"});
    fs::remove(d / "test_batch.bin");
    Bytes packed = gz(cifar_records(2));
    packed.resize(packed.size() / 2);
    write_file(d / "test_batch.bin.gz", packed);
    expect_data_error([&] { load_dataset(spec, Split::Test); },
                      {d / "test_batch.bin.gz", "truncated"});
}

// ---- the real files (SOURCES.md) ----

std::vector<int> histogram(const Dataset& ds) {
    std::vector<int> h(10, 0);
    for (uint8_t l : ds.labels) ++h[l];
    return h;
}

// Rebuilding the raw IDX file from the loaded data and matching the published raw md5 checks every
// pixel.
std::string raw_idx_md5(const Dataset& ds) {
    Bytes raw;
    put_be32(raw, 0x803);
    put_be32(raw, uint32_t(ds.size()));
    put_be32(raw, 28);
    put_be32(raw, 28);
    raw.insert(raw.end(), ds.tokens.begin(), ds.tokens.end());
    return md5_hex(raw.data(), raw.size());
}

TEST(RealData, MnistTrain) {
    REQUIRE_DATA_DIR();
    Dataset ds = load_dataset(DatasetSpec{DatasetKind::Mnist, std::string(data_root) + "/mnist"},
                              Split::Train);
    ASSERT_EQ(ds.size(), 60000);
    EXPECT_EQ(ds.tokens.size(), 60000u * 784u);
    EXPECT_EQ(histogram(ds),
              (std::vector<int>{5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949}));
    EXPECT_EQ(Bytes(ds.labels.begin(), ds.labels.begin() + 10),
              (Bytes{5, 0, 4, 1, 9, 2, 1, 3, 1, 4}));
    const uint8_t* first = ds.image(0);
    EXPECT_EQ(std::accumulate(first, first + 784, 0), 27525);
    EXPECT_EQ(first[5 * 28 + 21], 255);
    EXPECT_EQ(first[7 * 28 + 7], 49);
    EXPECT_EQ(first[7 * 28 + 8], 238);
    EXPECT_EQ(first[0], 0);
    EXPECT_EQ(raw_idx_md5(ds), "6bbc9ace898e44ae57da46a324031adb");
}

TEST(RealData, MnistTestAndLimit) {
    REQUIRE_DATA_DIR();
    const DatasetSpec spec{DatasetKind::Mnist, std::string(data_root) + "/mnist"};
    Dataset ds = load_dataset(spec, Split::Test);
    ASSERT_EQ(ds.size(), 10000);
    EXPECT_EQ(histogram(ds),
              (std::vector<int>{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009}));
    EXPECT_EQ(Bytes(ds.labels.begin(), ds.labels.begin() + 10),
              (Bytes{7, 2, 1, 0, 4, 1, 4, 9, 5, 9}));
    EXPECT_EQ(std::accumulate(ds.image(0), ds.image(0) + 784, 0), 18454);
    EXPECT_EQ(ds.image(9999)[14 * 28 + 14], 18);
    EXPECT_EQ(raw_idx_md5(ds), "2646ac647ad5339dbf082846283269ea");
    Dataset few = load_dataset(spec, Split::Test, 100);
    ASSERT_EQ(few.size(), 100);
    EXPECT_EQ(few.tokens, Bytes(ds.tokens.begin(), ds.tokens.begin() + 100 * 784));
}

TEST(RealData, MnistFoundThroughEnvironment) {
    REQUIRE_DATA_DIR();
    EXPECT_EQ(load_dataset(parse_dataset_spec("mnist"), Split::Test, 3).size(), 3);
}

TEST(RealData, CifarPartialBatches) {
    REQUIRE_DATA_DIR();
    const std::string root = std::string(data_root) + "/cifar-10";
    const DatasetSpec spec{DatasetKind::Cifar10, root};
    Dataset train = load_dataset(spec, Split::Train);
    Dataset test = load_dataset(spec, Split::Test);
    // The data set is partial and grows: each batch holds a prefix of the official batch, and
    // the record counts come from the files themselves (3073 bytes a record).
    constexpr size_t kRecord = 3073;
    const auto records = [&](const std::string& batch) {
        const Bytes raw =
            read_maybe_gzipped(root + "/cifar-10-batches-bin/" + batch + ".bin.gz", 10000 * kRecord);
        EXPECT_EQ(raw.size() % kRecord, 0u) << batch;
        return int64_t(raw.size() / kRecord);
    };
    const char* batches[] = {"data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4",
                             "data_batch_5"};
    std::vector<int64_t> counts;
    for (const char* b : batches) counts.push_back(records(b));
    const int64_t train_total = std::accumulate(counts.begin(), counts.end(), int64_t{0});
    ASSERT_EQ(train.size(), train_total);
    ASSERT_EQ(test.size(), records("test_batch"));
    // A training run names the official count while the folder holds less (as it grows, the
    // note goes away).
    const std::string line = describe_loaded(spec, train.size(), test.size(), 0, 0);
    EXPECT_EQ(line.find("(of 50,000 in the official files)") != std::string::npos,
              train.size() < 50000)
        << line;
    EXPECT_EQ(Bytes(train.labels.begin(), train.labels.begin() + 10),
              (Bytes{6, 9, 9, 4, 1, 1, 2, 7, 8, 3}));
    EXPECT_EQ(Bytes(test.labels.begin(), test.labels.begin() + 10),
              (Bytes{3, 8, 8, 0, 6, 6, 1, 6, 3, 1}));
    // Pixel (row 0, col 0) and (row 5, col 7) of the first training image, R G B.
    EXPECT_EQ((Bytes(train.image(0), train.image(0) + 3)), (Bytes{59, 62, 63}));
    const int64_t p = (5 * 32 + 7) * 3;
    EXPECT_EQ((Bytes(train.image(0) + p, train.image(0) + p + 3)), (Bytes{119, 77, 37}));
    // Batches are concatenated in order, and each one's labels are the prefix of the full label
    // list kept beside the data.
    int64_t first = 0;
    for (size_t b = 0; b < counts.size(); ++b) {
        ASSERT_GE(counts[b], 1017) << batches[b];
        Bytes full = read_maybe_gzipped(root + "/full-labels/" + batches[b] + ".labels", 10000);
        EXPECT_EQ(Bytes(train.labels.begin() + first, train.labels.begin() + first + counts[b]),
                  Bytes(full.begin(), full.begin() + counts[b]))
            << batches[b];
        first += counts[b];
    }
    // The first 1017 records of data_batch_1, converted back to planar records, reproduce the
    // raw md5 published for that byte-exact prefix.
    Bytes raw;
    for (int64_t i = 0; i < 1017; ++i) {
        raw.push_back(train.labels[size_t(i)]);
        for (int64_t c = 0; c < 3; ++c) {
            for (int64_t q = 0; q < 1024; ++q) raw.push_back(train.image(i)[q * 3 + c]);
        }
    }
    EXPECT_EQ(md5_hex(raw.data(), raw.size()), "62f96788be656b9613f40150fe2dda66");
    EXPECT_EQ(load_dataset(spec, Split::Train, 1500).size(), 1500);
}

}  // namespace
}  // namespace krause
