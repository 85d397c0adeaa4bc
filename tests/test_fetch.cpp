// Tests for MD5 (RFC 1321 vectors) and the fetcher: libcurl over file:// URLs, md5 refusal,
// skipping, failures that end at once, tar extraction, and an offline CIFAR-10 fetch end to end.
// Never leaves the machine: the only network address used is a closed port on 127.0.0.1.
#include <archive.h>
#include <archive_entry.h>
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

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

#include "data/archive.h"
#include "data/checksum.h"
#include "data/dataset.h"
#include "data/fetch.h"
#include "data/gzip_file.h"
#include "data_env.h"

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

// Tar archives for the tests, written by libarchive: members in order, the last one a folder
// when its name ends in '/'. gzip: also compress the archive.
struct Member {
    std::string name;
    Bytes data;
};

void write_tar(const std::string& path, const std::vector<Member>& members, bool gzip) {
    struct archive* a = archive_write_new();
    ASSERT_NE(a, nullptr);
    archive_write_set_format_pax_restricted(a);  // ustar, with pax headers for long names
    if (gzip) archive_write_add_filter_gzip(a);
    ASSERT_EQ(archive_write_open_filename(a, path.c_str()), ARCHIVE_OK) << archive_error_string(a);
    for (const auto& m : members) {
        struct archive_entry* e = archive_entry_new();
        archive_entry_set_pathname(e, m.name.c_str());
        const bool folder = !m.name.empty() && m.name.back() == '/';
        archive_entry_set_filetype(e, folder ? AE_IFDIR : AE_IFREG);
        archive_entry_set_perm(e, folder ? 0755 : 0644);
        archive_entry_set_size(e, la_int64_t(m.data.size()));
        ASSERT_EQ(archive_write_header(a, e), ARCHIVE_OK) << archive_error_string(a);
        if (!m.data.empty()) {
            ASSERT_EQ(archive_write_data(a, m.data.data(), m.data.size()),
                      la_ssize_t(m.data.size()));
        }
        archive_entry_free(e);
    }
    ASSERT_EQ(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
}

// A TCP port on 127.0.0.1 with nobody listening: bound by the system, then released.
int closed_local_port() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
    close(fd);
    return ok ? ntohs(addr.sin_port) : 1;
}

// An HTTP server on 127.0.0.1 for one test: answers each request with the next of `replies`
// (status line and body), then closes the connection; counts the requests.
class LocalHttp {
public:
    struct Reply {
        int status;
        std::string body;
    };
    explicit LocalHttp(std::vector<Reply> replies) : replies_(std::move(replies)) {
        fd_ = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
            listen(fd_, 4) != 0 ||
            getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
            ADD_FAILURE() << "cannot listen on 127.0.0.1";
            return;
        }
        port_ = ntohs(addr.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    ~LocalHttp() {
        shutdown(fd_, SHUT_RDWR);  // ends a pending accept()
        if (thread_.joinable()) thread_.join();
        close(fd_);
    }
    std::string url(const std::string& path) const {
        return "http://127.0.0.1:" + std::to_string(port_) + path;
    }
    int requests() const { return requests_.load(); }

private:
    void serve() {
        for (const auto& reply : replies_) {
            const int c = accept(fd_, nullptr, nullptr);
            if (c < 0) return;
            std::string request;
            char buf[1024];
            ssize_t n;
            while (request.find("\r\n\r\n") == std::string::npos &&
                   (n = read(c, buf, sizeof buf)) > 0)
                request.append(buf, size_t(n));
            ++requests_;
            const std::string head = "HTTP/1.1 " + std::to_string(reply.status) +
                                     (reply.status == 200 ? " OK" : " Error") +
                                     "\r\nContent-Length: " + std::to_string(reply.body.size()) +
                                     "\r\nConnection: close\r\n\r\n";
            const std::string all = head + reply.body;
            size_t sent = 0;
            while (sent < all.size()) {
                const ssize_t w = write(c, all.data() + sent, all.size() - sent);
                if (w <= 0) break;
                sent += size_t(w);
            }
            close(c);
        }
    }
    // A proxy from the environment must not take the requests elsewhere.
    test::ScopedEnv no_proxy_{"no_proxy", "127.0.0.1"};
    test::ScopedEnv no_proxy_upper_{"NO_PROXY", "127.0.0.1"};
    std::vector<Reply> replies_;
    int fd_ = -1;
    int port_ = 0;
    std::atomic<int> requests_{0};
    std::thread thread_;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

FetchHooks message_hooks(std::vector<std::string>& lines) {
    FetchHooks hooks;
    hooks.message = [&lines](const std::string& l) { lines.push_back(l); };
    return hooks;
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

TEST(Checksum, IncrementalMatchesOneShotAcrossBlockBoundaries) {
    std::mt19937 rng(7);
    for (size_t len : {0u, 1u, 55u, 56u, 63u, 64u, 65u, 119u, 120u, 128u, 1000u}) {
        Bytes data(len);
        for (auto& b : data) b = uint8_t(rng());
        Md5 md5;
        size_t pos = 0;
        while (pos < len) {
            size_t step = std::min<size_t>(len - pos, 1 + rng() % 70);
            md5.update(data.data() + pos, step);
            pos += step;
        }
        EXPECT_EQ(md5.hex_digest(), md5_hex(data.data(), len)) << len;
    }
    // A million 'a's: many blocks through one context.
    const std::string million(1000000, 'a');
    EXPECT_EQ(md5_of(million), "7707d6ae4e027c70eea2a935c2296f21");
}

TEST(Checksum, FilesAndMissingFile) {
    TempDir d;
    write_file(d / "abc", text("abc"));
    EXPECT_EQ(md5_file(d / "abc"), "900150983cd24fb0d6963f7d28e17f72");
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

TEST(Fetch, GoodFileFetchedAndVerifiedWithProgress) {
    TempDir src, dst;
    Bytes payload(300000);
    std::mt19937 rng(3);
    for (auto& b : payload) b = uint8_t(rng());
    write_file(src / "a file.gz", payload);  // a space, escaped in the URL
    std::vector<std::string> lines;
    FetchHooks hooks = message_hooks(lines);
    int64_t last_done = -1, last_total = -1;
    int calls = 0;
    hooks.bytes = [&](const std::string& name, int64_t done, int64_t total) {
        EXPECT_EQ(name, "a file.gz");
        EXPECT_GE(done, last_done);  // never goes backwards within one file
        last_done = done;
        last_total = total;
        ++calls;
    };
    fetch_files({{"a file.gz", src.url("a%20file.gz"), md5_of(payload)}}, dst / "new/sub", hooks);
    EXPECT_EQ(read_file(dst / "new/sub/a file.gz"), payload);
    EXPECT_EQ(leftovers(dst / "new/sub"), std::vector<std::string>{"a file.gz"});
    EXPECT_GT(calls, 0);
    EXPECT_EQ(last_done, int64_t(payload.size()));
    EXPECT_EQ(last_total, int64_t(payload.size()));
    ASSERT_FALSE(lines.empty());
    EXPECT_NE(lines.back().find("ok (300000 bytes, md5 " + md5_of(payload)), std::string::npos)
        << lines.back();
}

TEST(Fetch, WrongMd5RefusedAndNothingLeftBehind) {
    TempDir src, dst;
    write_file(src / "x.gz", text("not what was published"));
    const std::string bad = "0123456789abcdef0123456789abcdef";
    expect_data_error(
        [&] {
            fetch_files({{"x.gz", src.url("x.gz"), bad}}, dst.str());
        },
        {dst / "x.gz", "md5 mismatch", "expected " + bad,
         "got " + md5_of(text("not what was published"))});
    EXPECT_TRUE(leftovers(dst.str()).empty());
}

// Errors that retrying cannot mend end at the first try, as one line naming the URL.
void expect_quick_download_error(const std::string& url, const std::string& reason) {
    TempDir dst;
    std::vector<std::string> lines;
    FetchHooks hooks = message_hooks(lines);
    hooks.limits.first_backoff_s = 2;  // a retry would show in the time taken
    const auto start = std::chrono::steady_clock::now();
    try {
        fetch_files({{"gone.gz", url, md5_of(text(""))}}, dst.str(), hooks);
        ADD_FAILURE() << "expected DownloadError for " << url;
    } catch (const DownloadError& e) {
        const std::string msg = e.what();
        EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
        EXPECT_NE(msg.find(url), std::string::npos) << msg;
        EXPECT_NE(msg.find(reason), std::string::npos) << msg;
        EXPECT_EQ(msg.find("tries"), std::string::npos) << msg;
    }
    EXPECT_LT(seconds_since(start), 1.5) << url;
    EXPECT_EQ(lines.size(), 1u);  // "downloading ...", and no "trying again"
    EXPECT_TRUE(leftovers(dst.str()).empty());
}

TEST(Fetch, MissingLocalFileFailsAtOnce) {
    TempDir src;
    expect_quick_download_error(src.url("gone.gz"), "ouldn't");
}

TEST(Fetch, RefusedConnectionFailsAtOnce) {
    test::ScopedEnv no_proxy("no_proxy", "127.0.0.1");
    test::ScopedEnv no_proxy_upper("NO_PROXY", "127.0.0.1");
    const std::string url =
        "http://127.0.0.1:" + std::to_string(closed_local_port()) + "/mnist/gone.gz";
    expect_quick_download_error(url, "onnect");
}

TEST(Fetch, TransientHttpErrorsAreTriedAgainWithBackoff) {
    TempDir dst;
    const std::string body(5000, 'k');
    LocalHttp server({{503, ""}, {429, ""}, {200, body}});
    std::vector<std::string> lines;
    FetchHooks hooks = message_hooks(lines);
    hooks.limits.first_backoff_s = 0.05;
    int64_t last_done = 0;
    hooks.bytes = [&](const std::string&, int64_t done, int64_t) { last_done = done; };
    fetch_files({{"k.gz", server.url("/k.gz"), md5_of(body)}}, dst.str(), hooks);
    EXPECT_EQ(server.requests(), 3);
    EXPECT_EQ(read_file(dst / "k.gz"), text(body));
    EXPECT_EQ(last_done, 5000);
    int retries = 0;
    for (const auto& l : lines) retries += l.find("trying again") != std::string::npos;
    EXPECT_EQ(retries, 2);
}

TEST(Fetch, RetriesAreBoundedAndPermanentHttpErrorsNotRetried) {
    TempDir dst;
    {
        LocalHttp server({{500, ""}, {502, ""}, {503, ""}, {504, ""}, {200, "late"}});
        FetchHooks hooks;
        hooks.limits.first_backoff_s = 0.01;
        hooks.limits.attempts = 3;
        expect_data_error(
            [&] {
                fetch_files({{"a.gz", server.url("/a.gz"), md5_of(text("late"))}}, dst.str(),
                            hooks);
            },
            {server.url("/a.gz"), "503", "(3 tries)"});
        EXPECT_EQ(server.requests(), 3);
    }
    LocalHttp server({{404, ""}, {200, "never"}});
    FetchHooks hooks;
    hooks.limits.first_backoff_s = 0.01;
    expect_data_error(
        [&] {
            fetch_files({{"b.gz", server.url("/b.gz"), md5_of(text("never"))}}, dst.str(), hooks);
        },
        {server.url("/b.gz"), "404"});
    EXPECT_EQ(server.requests(), 1);
    EXPECT_TRUE(leftovers(dst.str()).empty());
}

TEST(Fetch, DatasetFetchFailureIsOneLineWithWhatToDoInstead) {
    TempDir mirror, dst;
    try {
        fetch_dataset(DatasetKind::FashionMnist, dst / "fashion-mnist", {},
                      "file://" + mirror.str());
        ADD_FAILURE() << "expected DownloadError";
    } catch (const DownloadError& e) {
        const std::string msg = e.what();
        EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
        for (const std::string& n :
             {std::string("cannot download fashion-mnist"),
              mirror.url("train-images-idx3-ubyte.gz"),
              std::string("copy train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz"),
              "into " + (dst / "fashion-mnist"),
              std::string("apt-get install dataset-fashion-mnist")})
            EXPECT_NE(msg.find(n), std::string::npos) << "missing '" << n << "' in: " << msg;
    }
}

TEST(Fetch, StopFlagEndsTheFetch) {
    TempDir src, dst;
    write_file(src / "f.gz", Bytes(100000, 1));
    std::atomic<bool> stop{true};
    FetchHooks hooks;
    hooks.stop = &stop;
    EXPECT_THROW(
        fetch_files({{"f.gz", src.url("f.gz"), md5_of(Bytes(100000, 1))}}, dst.str(), hooks),
        FetchStopped);
    EXPECT_TRUE(leftovers(dst.str()).empty());
}

TEST(Fetch, PresentFileWithRightMd5Skipped) {
    TempDir dst;
    Bytes payload = text("already here");
    write_file(dst / "have.gz", payload);
    std::vector<std::string> lines;
    // The URL cannot be fetched: success proves nothing was downloaded.
    fetch_files({{"have.gz", "file:///nonexistent/krause/have.gz", md5_of(payload)}}, dst.str(),
                message_hooks(lines));
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_NE(lines[0].find("already present"), std::string::npos) << lines[0];
}

TEST(Fetch, PresentFileWithWrongMd5Replaced) {
    TempDir src, dst;
    Bytes good = text("the real content");
    write_file(src / "f.gz", good);
    write_file(dst / "f.gz", text("stale"));
    fetch_files({{"f.gz", src.url("f.gz"), md5_of(good)}}, dst.str());
    EXPECT_EQ(read_file(dst / "f.gz"), good);
}

TEST(Fetch, LocalMirrorEntryThatIsNotAFileRefused) {
    TempDir src, dst;
    fs::create_directories(src / "folder.gz");
    expect_data_error(
        [&] {
            fetch_files({{"folder.gz", src.url("folder.gz"), md5_of(text(""))}}, dst.str());
        },
        {src.url("folder.gz"), "not a regular file"});
}

TEST(Fetch, DatasetBaseUrlOverrideStaysLocal) {
    TempDir mirror, dst;
    for (const auto& f : official_files(DatasetKind::FashionMnist))
        write_file(mirror / f.name, text("junk"));
    // The junk cannot match the published md5, which shows the file came from the mirror and was
    // refused.
    expect_data_error(
        [&] { fetch_dataset(DatasetKind::FashionMnist, dst.str(), {}, "file://" + mirror.str()); },
        {"train-images-idx3-ubyte.gz", "md5 mismatch", "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
         "file://" + mirror.str()});
    EXPECT_TRUE(leftovers(dst.str()).empty());
}

// ---- tar ----

TEST(Tar, ExtractsWantedMembersOnly) {
    TempDir d;
    const std::string long_name = "top/" + std::string(120, 'n') + ".bin";
    const std::vector<Member> members = {{"top/", {}},
                                         {"top/a.bin", text("alpha")},
                                         {"skip.txt", text("unwanted")},
                                         {"top/deep/b.bin", Bytes(1300, 9)},
                                         {long_name, text("long")}};
    write_tar(d / "t.tar.gz", members, true);
    write_tar(d / "t.tar", members, false);
    for (const char* archive : {"t.tar.gz", "t.tar"}) {
        const std::string out = d / (std::string("out-") + archive);
        std::vector<std::string> lines;
        extract_tar(d / archive, out, {"top/a.bin", "./top/deep/b.bin", long_name},
                    message_hooks(lines));
        EXPECT_EQ(read_file(out + "/top/a.bin"), text("alpha"));
        EXPECT_EQ(read_file(out + "/top/deep/b.bin"), Bytes(1300, 9));
        EXPECT_EQ(read_file(out + "/" + long_name), text("long"));
        EXPECT_FALSE(fs::exists(out + "/skip.txt"));
        EXPECT_EQ(lines.size(), 3u);
    }
}

TEST(Tar, CorruptTruncatedAndIncompleteArchivesRejected) {
    TempDir d;
    write_tar(d / "ok.tar", {{"a.bin", Bytes(2000, 1)}}, false);
    const Bytes tar = read_file(d / "ok.tar");
    Bytes bad = tar;
    bad[10] ^= 1;  // inside the name: the header checksum no longer matches
    write_file(d / "bad.tar", bad);
    expect_data_error([&] { extract_tar(d / "bad.tar", d / "o1", {"a.bin"}); }, {d / "bad.tar"});
    EXPECT_FALSE(fs::exists(d / "o1/a.bin"));
    write_file(d / "cut.tar", Bytes(tar.begin(), tar.begin() + 1200));
    const std::string cut = expect_data_error(
        [&] { extract_tar(d / "cut.tar", d / "o2", {"a.bin"}); }, {d / "cut.tar"});
    EXPECT_NE(cut.find("runcated"), std::string::npos) << cut;
    EXPECT_FALSE(fs::exists(d / "o2/a.bin"));
    EXPECT_TRUE(!fs::exists(d / "o2") || leftovers(d / "o2").empty());
    expect_data_error(
        [&] {
            extract_tar(d / "ok.tar", d / "o3", {"a.bin", "b.bin"});
        },
        {d / "ok.tar", "member b.bin not found"});
    write_file(d / "text.tar", text(std::string(600, 'z')));
    expect_data_error([&] { extract_tar(d / "text.tar", d / "o4", {"a.bin"}); }, {d / "text.tar"});
    expect_data_error([&] { extract_tar(d / "none.tar", d / "o5", {"a.bin"}); }, {d / "none.tar"});
}

// ---- CIFAR-10 end to end, offline ----

TEST(Fetch, Cifar10ArchiveFetchedExtractedAndLoadable) {
    TempDir src, dst;
    std::vector<Member> members;
    const char* stems[] = {"data_batch_1", "data_batch_2", "data_batch_3",
                           "data_batch_4", "data_batch_5", "test_batch"};
    for (int b = 0; b < 6; ++b) {
        Bytes recs;
        for (int r = 0; r < 2; ++r) {
            recs.push_back(uint8_t(b));
            for (int p = 0; p < 3072; ++p) recs.push_back(uint8_t((p / 1024) * 100 + r));
        }
        members.push_back({std::string("cifar-10-batches-bin/") + stems[b] + ".bin", recs});
    }
    members.push_back({"cifar-10-batches-bin/batches.meta.txt", text("airplane\nautomobile\n")});
    members.push_back({"cifar-10-batches-bin/readme.html", text("<html>")});
    write_tar(src / "cifar-10-binary.tar.gz", members, true);
    const Bytes archive = read_file(src / "cifar-10-binary.tar.gz");
    const RemoteFile remote{"cifar-10-binary.tar.gz", src.url("cifar-10-binary.tar.gz"),
                            md5_of(archive)};
    fetch_cifar10(remote, dst.str());
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
    fetch_cifar10(remote, dst.str(), message_hooks(lines));
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_NE(lines[0].find("already extracted"), std::string::npos) << lines[0];
}

}  // namespace
}  // namespace krause
