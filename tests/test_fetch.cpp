// Tests for MD5/SHA-256 (standard vectors) and the fetcher: curl over file:// URLs, md5 refusal,
// skipping, the tar reader, and an offline CIFAR-10 fetch end to end. Never touches the network.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "data/checksum.h"
#include "data/dataset.h"
#include "data/fetch.h"
#include "data/gzip_file.h"

namespace krause {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

class TempDir {
public:
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "krause-fetch-XXXXXX").string();
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
    std::string url(const std::string& name) const { return "file://" + (*this / name); }

private:
    std::string path_;
};

void write_file(const std::string& path, const Bytes& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

Bytes read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), {});
}

Bytes text(const std::string& s) {
    return Bytes(s.begin(), s.end());
}
std::string md5_of(const Bytes& b) {
    return md5_hex(b.data(), b.size());
}
std::string md5_of(const std::string& s) {
    return md5_hex(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}
std::string sha_of(const std::string& s) {
    return sha256_hex(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

bool curl_on_path() {
    const char* path = std::getenv("PATH");
    std::stringstream dirs(path ? path : "");
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
        if (!dir.empty() && access((fs::path(dir) / "curl").c_str(), X_OK) == 0) return true;
    }
    return false;
}

#define REQUIRE_CURL()   \
    if (!curl_on_path()) \
    GTEST_SKIP() << "curl not on PATH: fetch tests need it (apt-get install -y curl)"

std::string expect_data_error(const std::function<void()>& fn,
                              const std::vector<std::string>& needles) {
    try {
        fn();
        ADD_FAILURE() << "expected DataError";
    } catch (const DataError& e) {
        const std::string msg = e.what();
        for (const auto& n : needles)
            EXPECT_NE(msg.find(n), std::string::npos) << "missing '" << n << "' in: " << msg;
        return msg;
    }
    return "";
}

// Names in dir other than the given ones: temp files must never be left behind.
std::vector<std::string> leftovers(const std::string& dir) {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
    return names;
}

// A minimal ustar writer: header fields in octal, checksum over the header with the field as
// spaces.
void tar_add(Bytes& tar, const std::string& name, const Bytes& data, char type = '0',
             const std::string& prefix = "") {
    uint8_t h[512] = {};
    std::memcpy(h, name.data(), std::min<size_t>(name.size(), 100));
    std::snprintf(reinterpret_cast<char*>(h + 100), 8, "%07o", 0644);
    std::snprintf(reinterpret_cast<char*>(h + 108), 8, "%07o", 0);
    std::snprintf(reinterpret_cast<char*>(h + 116), 8, "%07o", 0);
    std::snprintf(reinterpret_cast<char*>(h + 124), 12, "%011lo",
                  static_cast<unsigned long>(data.size()));
    std::snprintf(reinterpret_cast<char*>(h + 136), 12, "%011o", 0);
    std::memset(h + 148, ' ', 8);
    h[156] = uint8_t(type);
    std::memcpy(h + 257, "ustar", 6);
    std::memcpy(h + 263, "00", 2);
    std::memcpy(h + 345, prefix.data(), std::min<size_t>(prefix.size(), 155));
    unsigned sum = 0;
    for (uint8_t b : h) sum += b;
    std::snprintf(reinterpret_cast<char*>(h + 148), 8, "%06o", sum);
    h[155] = ' ';
    tar.insert(tar.end(), h, h + 512);
    tar.insert(tar.end(), data.begin(), data.end());
    tar.resize((tar.size() + 511) / 512 * 512, 0);
}

void tar_end(Bytes& tar) {
    tar.resize(tar.size() + 1024, 0);
}

// ---- checksums ----

TEST(Checksum, Md5Rfc1321Vectors) {
    EXPECT_EQ(md5_of(std::string("")), "d41d8cd98f00b204e9800998ecf8427e");
    EXPECT_EQ(md5_of(std::string("a")), "0cc175b9c0f1b6a831c399e269772661");
    EXPECT_EQ(md5_of(std::string("abc")), "900150983cd24fb0d6963f7d28e17f72");
    EXPECT_EQ(md5_of(std::string("message digest")), "f96b697d7cb7938d525a2f31aaf161d0");
    EXPECT_EQ(md5_of(std::string("abcdefghijklmnopqrstuvwxyz")),
              "c3fcd3d76192e4007dfb496cca67e13b");
    EXPECT_EQ(md5_of(std::string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")),
              "d174ab98d277d9f5a5611c2c9f419d9f");
    std::string digits;
    for (int i = 0; i < 8; ++i) digits += "1234567890";
    EXPECT_EQ(md5_of(digits), "57edf4a22be3c955ac49da2e2107b67a");
}

TEST(Checksum, Sha256Fips180Vectors) {
    EXPECT_EQ(sha_of(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(sha_of("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(sha_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    EXPECT_EQ(sha_of("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmn"
                     "opqklmnopqrlmnopqrs"
                     "mnopqrstnopqrstu"),
              "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
    EXPECT_EQ(sha_of(std::string(1000000, 'a')),
              "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Checksum, IncrementalMatchesOneShotAcrossBlockBoundaries) {
    std::mt19937 rng(7);
    for (size_t len : {0u, 1u, 55u, 56u, 63u, 64u, 65u, 119u, 120u, 128u, 1000u}) {
        Bytes data(len);
        for (auto& b : data) b = uint8_t(rng());
        Md5 md5;
        Sha256 sha;
        size_t pos = 0;
        while (pos < len) {
            size_t step = std::min<size_t>(len - pos, 1 + rng() % 70);
            md5.update(data.data() + pos, step);
            sha.update(data.data() + pos, step);
            pos += step;
        }
        EXPECT_EQ(md5.hex_digest(), md5_hex(data.data(), len)) << len;
        EXPECT_EQ(sha.hex_digest(), sha256_hex(data.data(), len)) << len;
    }
}

TEST(Checksum, FilesAndMissingFile) {
    TempDir d;
    write_file(d / "abc", text("abc"));
    EXPECT_EQ(md5_file(d / "abc"), "900150983cd24fb0d6963f7d28e17f72");
    EXPECT_EQ(sha256_file(d / "abc"),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect_data_error([&] { md5_file(d / "none"); }, {d / "none"});
}

TEST(Checksum, RealMnistFilesMatchPublishedMd5) {
    const char* root = std::getenv("KRAUSE_DATA_DIR");
    if (root == nullptr || *root == '\0')
        GTEST_SKIP() << "KRAUSE_DATA_DIR not set: cannot check the real MNIST md5s";
    for (const auto& f : official_files(DatasetKind::Mnist)) {
        EXPECT_EQ(md5_file(std::string(root) + "/mnist/" + f.name), f.md5) << f.name;
    }
}

// ---- file lists ----

TEST(Fetch, OfficialFileLists) {
    auto mnist = official_files(DatasetKind::Mnist);
    ASSERT_EQ(mnist.size(), 4u);
    EXPECT_EQ(mnist[0].url,
              "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz");
    EXPECT_EQ(mnist[3].md5, "ec29112dd5afa0611ce80d1b7f02629c");
    auto fashion = official_files(DatasetKind::FashionMnist);
    ASSERT_EQ(fashion.size(), 4u);
    EXPECT_EQ(fashion[0].md5, "8d4fb7e6c68d591d4c3dfef9ec88bf0d");
    auto cifar = official_files(DatasetKind::Cifar10);
    ASSERT_EQ(cifar.size(), 1u);
    EXPECT_EQ(cifar[0].url, "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz");
    EXPECT_EQ(cifar[0].md5, "c32a1d4ab5d03f1284b67883e8d87530");
    for (const auto& list : {mnist, fashion, cifar}) {
        for (const auto& f : list) EXPECT_EQ(f.md5.size(), 32u) << f.name;
    }
}

TEST(Fetch, ReplaceUrlBase) {
    EXPECT_EQ(replace_url_base("https://host/a/b/file.gz", "file:///tmp/mirror"),
              "file:///tmp/mirror/file.gz");
    EXPECT_EQ(replace_url_base("https://host/a/b/file.gz", "file:///tmp/mirror/"),
              "file:///tmp/mirror/file.gz");
    EXPECT_EQ(replace_url_base("https://host/file.gz", ""), "https://host/file.gz");
}

// ---- fetch_files over file:// ----

TEST(Fetch, GoodFileFetchedAndVerified) {
    REQUIRE_CURL();
    TempDir src, dst;
    Bytes payload = gzip_compress(text("labels").data(), 6);
    write_file(src / "a file.gz", payload);  // a space, to show no shell is involved
    std::vector<std::string> lines;
    fetch_files({{"a file.gz", src.url("a%20file.gz"), md5_of(payload)}}, dst / "new/sub",
                [&](const std::string& l) { lines.push_back(l); });
    EXPECT_EQ(read_file(dst / "new/sub/a file.gz"), payload);
    EXPECT_EQ(leftovers(dst / "new/sub"), std::vector<std::string>{"a file.gz"});
    EXPECT_FALSE(lines.empty());
}

TEST(Fetch, WrongMd5RefusedAndNothingLeftBehind) {
    REQUIRE_CURL();
    TempDir src, dst;
    write_file(src / "x.gz", text("not what was published"));
    const std::string bad = "0123456789abcdef0123456789abcdef";
    expect_data_error(
        [&] {
            fetch_files({{"x.gz", src.url("x.gz"), bad}}, dst.str(), nullptr);
        },
        {dst / "x.gz", "md5 mismatch", "expected " + bad,
         "got " + md5_of(text("not what was published"))});
    EXPECT_TRUE(leftovers(dst.str()).empty());
}

TEST(Fetch, MissingSourceIsAClearError) {
    REQUIRE_CURL();
    TempDir src, dst;
    expect_data_error(
        [&] {
            fetch_files({{"gone.gz", src.url("gone.gz"), md5_of(text(""))}}, dst.str(), nullptr);
        },
        {dst / "gone.gz", "download from " + src.url("gone.gz") + " failed", "curl exit code"});
    EXPECT_TRUE(leftovers(dst.str()).empty());
}

TEST(Fetch, PresentFileWithRightMd5Skipped) {
    REQUIRE_CURL();
    TempDir dst;
    Bytes payload = text("already here");
    write_file(dst / "have.gz", payload);
    std::vector<std::string> lines;
    // The URL cannot be fetched: success proves nothing was downloaded.
    fetch_files({{"have.gz", "file:///nonexistent/krause/have.gz", md5_of(payload)}}, dst.str(),
                [&](const std::string& l) { lines.push_back(l); });
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_NE(lines[0].find("already present"), std::string::npos) << lines[0];
}

TEST(Fetch, PresentFileWithWrongMd5Replaced) {
    REQUIRE_CURL();
    TempDir src, dst;
    Bytes good = text("the real content");
    write_file(src / "f.gz", good);
    write_file(dst / "f.gz", text("stale"));
    fetch_files({{"f.gz", src.url("f.gz"), md5_of(good)}}, dst.str(), nullptr);
    EXPECT_EQ(read_file(dst / "f.gz"), good);
}

TEST(Fetch, DatasetBaseUrlOverrideStaysLocal) {
    REQUIRE_CURL();
    TempDir mirror, dst;
    for (const auto& f : official_files(DatasetKind::FashionMnist))
        write_file(mirror / f.name, text("junk"));
    // The junk cannot match the published md5, which shows the file came from the mirror and was
    // refused.
    expect_data_error(
        [&] {
            fetch_dataset(DatasetKind::FashionMnist, dst.str(), nullptr, "file://" + mirror.str());
        },
        {"train-images-idx3-ubyte.gz", "md5 mismatch", "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
         "file://" + mirror.str()});
    EXPECT_TRUE(leftovers(dst.str()).empty());
}

// ---- tar ----

TEST(Tar, ExtractsWantedMembersOnly) {
    TempDir d;
    Bytes tar;
    tar_add(tar, "top/", {}, '5');
    tar_add(tar, "top/a.bin", text("alpha"));
    tar_add(tar, "skip.txt", text("unwanted"));
    tar_add(tar, "b.bin", Bytes(1300, 9), '0', "top/deep");  // name split into ustar prefix + name
    std::string long_name = "top/" + std::string(120, 'n') + ".bin";
    tar_add(tar, "././@LongLink", text(long_name + std::string(1, '\0')), 'L');
    tar_add(tar, long_name.substr(0, 100), text("long"));
    tar_end(tar);
    write_file(d / "t.tar.gz", gzip_compress(tar.data(), tar.size()));
    write_file(d / "t.tar", tar);
    for (const char* archive : {"t.tar.gz", "t.tar"}) {
        const std::string out = d / (std::string("out-") + archive);
        std::vector<std::string> lines;
        extract_tar(d / archive, out, {"top/a.bin", "./top/deep/b.bin", long_name},
                    [&](const std::string& l) { lines.push_back(l); });
        EXPECT_EQ(read_file(out + "/top/a.bin"), text("alpha"));
        EXPECT_EQ(read_file(out + "/top/deep/b.bin"), Bytes(1300, 9));
        EXPECT_EQ(read_file(out + "/" + long_name), text("long"));
        EXPECT_FALSE(fs::exists(out + "/skip.txt"));
        EXPECT_EQ(lines.size(), 3u);
    }
}

TEST(Tar, CorruptTruncatedAndIncompleteArchivesRejected) {
    TempDir d;
    Bytes tar;
    tar_add(tar, "a.bin", Bytes(2000, 1));
    tar_end(tar);
    Bytes bad = tar;
    bad[10] ^= 1;  // inside the name: the header checksum no longer matches
    write_file(d / "bad.tar", bad);
    expect_data_error([&] { extract_tar(d / "bad.tar", d / "o1", {"a.bin"}, nullptr); },
                      {d / "bad.tar", "checksum mismatch"});
    write_file(d / "cut.tar", Bytes(tar.begin(), tar.begin() + 1200));
    expect_data_error([&] { extract_tar(d / "cut.tar", d / "o2", {"a.bin"}, nullptr); },
                      {d / "cut.tar", "truncated"});
    EXPECT_FALSE(fs::exists(d / "o2/a.bin"));
    write_file(d / "ok.tar", tar);
    expect_data_error(
        [&] {
            extract_tar(d / "ok.tar", d / "o3", {"a.bin", "b.bin"}, nullptr);
        },
        {d / "ok.tar", "member b.bin not found"});
    write_file(d / "text.tar", text(std::string(600, 'z')));
    expect_data_error([&] { extract_tar(d / "text.tar", d / "o4", {"a.bin"}, nullptr); },
                      {d / "text.tar"});
}

// ---- CIFAR-10 end to end, offline ----

TEST(Fetch, Cifar10ArchiveFetchedExtractedAndLoadable) {
    REQUIRE_CURL();
    TempDir src, dst;
    Bytes tar;
    const char* stems[] = {"data_batch_1", "data_batch_2", "data_batch_3",
                           "data_batch_4", "data_batch_5", "test_batch"};
    for (int b = 0; b < 6; ++b) {
        Bytes recs;
        for (int r = 0; r < 2; ++r) {
            recs.push_back(uint8_t(b));
            for (int p = 0; p < 3072; ++p) recs.push_back(uint8_t((p / 1024) * 100 + r));
        }
        tar_add(tar, std::string("cifar-10-batches-bin/") + stems[b] + ".bin", recs);
    }
    tar_add(tar, "cifar-10-batches-bin/batches.meta.txt", text("airplane\nautomobile\n"));
    tar_add(tar, "cifar-10-batches-bin/readme.html", text("<html>"));
    tar_end(tar);
    Bytes archive = gzip_compress(tar.data(), tar.size());
    write_file(src / "cifar-10-binary.tar.gz", archive);
    const RemoteFile remote{"cifar-10-binary.tar.gz", src.url("cifar-10-binary.tar.gz"),
                            md5_of(archive)};
    fetch_cifar10(remote, dst.str(), nullptr);
    EXPECT_FALSE(fs::exists(dst / "cifar-10-binary.tar.gz"));
    EXPECT_FALSE(fs::exists(dst / "cifar-10-batches-bin/readme.html"));
    EXPECT_TRUE(fs::exists(dst / "cifar-10-batches-bin/batches.meta.txt"));
    Dataset train = load_dataset(DatasetSpec{DatasetKind::Cifar10, dst.str()}, Split::Train);
    ASSERT_EQ(train.size(), 10);
    EXPECT_EQ(train.labels[9], 4);
    EXPECT_EQ((Bytes(train.image(1), train.image(1) + 3)), (Bytes{1, 101, 201}));
    EXPECT_EQ(load_dataset(DatasetSpec{DatasetKind::Cifar10, dst.str()}, Split::Test).size(), 2);
    std::vector<std::string> lines;
    fs::remove(src / "cifar-10-binary.tar.gz");
    fetch_cifar10(remote, dst.str(), [&](const std::string& l) { lines.push_back(l); });
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_NE(lines[0].find("already extracted"), std::string::npos) << lines[0];
}

}  // namespace
}  // namespace krause
