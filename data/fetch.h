// Downloading the official dataset files with curl, verified by md5, and unpacking the CIFAR-10
// tarball. Offline-testable: every URL can be redirected (file:// works) and the file list can be
// given explicitly.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace krause {

struct RemoteFile {
    std::string name;  // file name inside the target folder
    std::string url;
    std::string md5;  // lower-case hex of the file as downloaded
};

using ProgressFn = std::function<void(const std::string&)>;

// The published URLs and md5s (MNIST: the ossci S3 mirror; Fashion-MNIST: Zalando's S3; CIFAR-10:
// Toronto).
std::vector<RemoteFile> official_files(DatasetKind kind);

// Replaces everything up to the last '/' of url by base (a '/' is added to base when missing).
std::string replace_url_base(const std::string& url, const std::string& base);

// For each file: skip it when dir/name exists with the right md5; otherwise download with
// `curl -fL --retry 3` to a temp file in dir, verify the md5 (on mismatch the temp file is deleted
// and a DataError names the file, the expected and the actual md5), then rename it into place
// atomically.
void fetch_files(const std::vector<RemoteFile>& files, const std::string& dir,
                 const ProgressFn& progress);

// Extracts the regular-file members named in `members` (paths as stored in the archive) from a tar
// or tar.gz file into dest_dir, keeping their relative paths. Own ustar reader (header checksums
// checked, GNU long names and pax paths understood). Throws DataError when the archive is corrupt
// or a wanted member is missing.
void extract_tar(const std::string& archive, const std::string& dest_dir,
                 const std::vector<std::string>& members, const ProgressFn& progress);

// CIFAR-10: fetches `archive` into dir and extracts the 6 batch files and batches.meta.txt into
// dir/cifar-10-batches-bin, then deletes the archive. Skips everything when the 6 batch files are
// already there as plain .bin files whose sizes are positive multiples of the 3073-byte record.
void fetch_cifar10(const RemoteFile& archive, const std::string& dir, const ProgressFn& progress);

// Fetches the official files of `kind` into dir. base_url_override replaces each URL's directory
// part.
void fetch_dataset(DatasetKind kind, const std::string& dir, const ProgressFn& progress,
                   const std::string& base_url_override = "");

}  // namespace krause
