// Downloading the official data-set files (libcurl), verified by md5, and unpacking the CIFAR-10
// tarball (libarchive). Offline-testable: every URL can be redirected (file:// works) and the file
// list can be given explicitly.
#pragma once

#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/download.h"

namespace krause {

struct RemoteFile {
    std::string name;  // file name inside the target folder
    std::string url;
    std::string md5;  // lower-case hex of the file as downloaded
};

// The published URLs and md5s (MNIST: the ossci S3 mirror; Fashion-MNIST: Zalando's S3; CIFAR-10:
// Toronto).
std::vector<RemoteFile> official_files(DatasetKind kind);

// Replaces everything up to the last '/' of url by base (a '/' is added to base when missing).
std::string replace_url_base(const std::string& url, const std::string& base);

// For each file: skip it when dir/name exists with the right md5; otherwise download it to a temp
// file in dir, verify the md5 (on a mismatch the temp file is deleted and a DataError names the
// file, the expected and the actual md5), then rename it into place atomically. The first file
// that cannot be had ends the fetch with its DownloadError.
void fetch_files(const std::vector<RemoteFile>& files, const std::string& dir,
                 const FetchHooks& hooks = {});

// CIFAR-10: fetches `archive` into dir and extracts the 6 batch files and batches.meta.txt into
// dir/cifar-10-batches-bin, then deletes the archive. Skips everything when the 6 batch files are
// already there as plain .bin files whose sizes are positive multiples of the 3073-byte record.
void fetch_cifar10(const RemoteFile& archive, const std::string& dir, const FetchHooks& hooks = {});

// Fetches the official files of `kind` into dir (the kind's folder, e.g. ROOT/mnist).
// base_url_override replaces each URL's directory part. A download that fails on the way becomes
// one DownloadError line with what to do instead (copy the files in, or a Debian package).
void fetch_dataset(DatasetKind kind, const std::string& dir, const FetchHooks& hooks = {},
                   const std::string& base_url_override = "");

}  // namespace krause
