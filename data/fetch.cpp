// fetch_files (md5-verified downloads, atomically renamed into place), the CIFAR-10 recipe, and the
// published URLs and md5 sums.
#include "data/fetch.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "data/archive.h"
#include "data/checksum.h"
#include "data/temp_file.h"

namespace krause {

namespace fs = std::filesystem;

namespace {

constexpr const char* kMnistBase = "https://ossci-datasets.s3.amazonaws.com/mnist/";
constexpr const char* kFashionBase = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/";
constexpr const char* kCifarUrl = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
constexpr const char* kCifarMd5 = "c32a1d4ab5d03f1284b67883e8d87530";
constexpr const char* kCifarBatchDir = "cifar-10-batches-bin";
constexpr int64_t kCifarRecordBytes = 3073;

void say(const FetchHooks& hooks, const std::string& line) {
    if (hooks.message) hooks.message(line);
}

void make_dir(const std::string& dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec || !fs::is_directory(dir))
        throw DataError(dir + ": cannot create folder: " + ec.message());
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
                 const FetchHooks& hooks) {
    make_dir(dir);
    for (const auto& file : files) {
        if (file.name.empty() || file.name.find('/') != std::string::npos || file.name == "." ||
            file.name == "..") {
            throw DataError("fetch: invalid file name '" + file.name + "' for " + file.url);
        }
        const std::string target = (fs::path(dir) / file.name).string();
        const std::string& want = file.md5;
        std::error_code ec;
        if (fs::is_regular_file(target, ec)) {
            const std::string have = md5_file(target);
            if (!want.empty() && have == want) {
                say(hooks, file.name + ": already present, md5 ok");
                continue;
            }
            say(hooks, file.name + ": present but md5 is " + have + ", expected " + want +
                           "; downloading again");
        }
        const std::string tmp =
            (fs::path(dir) / ("." + file.name + ".part-" + std::to_string(getpid()))).string();
        TempFile guard(tmp);
        say(hooks, file.name + ": downloading " + file.url);
        const std::string got = download_file(file.url, tmp, file.name, hooks);
        if (want.empty()) {
            say(hooks, file.name + ": no md5 to check against (got " + got + ")");
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
        say(hooks, file.name + ": ok (" + std::to_string(fs::file_size(target, ec)) +
                       " bytes, md5 " + got + ")");
    }
}

void fetch_cifar10(const RemoteFile& archive, const std::string& dir, const FetchHooks& hooks) {
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
        say(hooks, std::string(kCifarBatchDir) + ": already extracted in " + dir);
        return;
    }
    fetch_files({archive}, dir, hooks);
    const std::string archive_path = (fs::path(dir) / archive.name).string();
    extract_tar(archive_path, dir, members, hooks);
    // The loader never reads the archive; the extracted batches are what "already present" is
    // judged on.
    std::remove(archive_path.c_str());
    say(hooks, "cifar10: ready in " + (fs::path(dir) / kCifarBatchDir).string());
}

void fetch_dataset(DatasetKind kind, const std::string& dir, const FetchHooks& hooks,
                   const std::string& base_url_override) {
    std::vector<RemoteFile> files = official_files(kind);
    if (!base_url_override.empty()) {
        for (auto& f : files) f.url = replace_url_base(f.url, base_url_override);
    }
    try {
        if (kind == DatasetKind::Cifar10) {
            fetch_cifar10(files.front(), dir, hooks);
        } else {
            fetch_files(files, dir, hooks);
            say(hooks, to_string(kind) + ": ready in " + dir);
        }
    } catch (const DownloadError& e) {
        // Offline is the usual cause: say once what else brings the data.
        std::string names;
        for (const auto& f : files) names += (names.empty() ? "" : ", ") + f.name;
        std::string instead = "copy " + names + " into " + dir;
        if (kind == DatasetKind::Cifar10)
            instead +=
                " and fetch again (or copy its " + std::string(kCifarBatchDir) + " folder there)";
        if (kind == DatasetKind::FashionMnist)
            instead += ", or apt-get install dataset-fashion-mnist";
        throw DownloadError("cannot download " + to_string(kind) + ": " + e.what() + "; " +
                            instead);
    }
}

}  // namespace krause
