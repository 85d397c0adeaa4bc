// One URL to one file through libcurl: timeouts, a bounded number of retries of transient
// failures with backoff, byte progress, a stop flag, and the md5 of what was written.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "data/gzip_file.h"

namespace krause {

// One line per event for the user (a file present, downloaded, extracted).
using MessageFn = std::function<void(const std::string& line)>;
// Bytes of the current file so far, and in all (0 while the server has not said).
using BytesFn = std::function<void(const std::string& name, int64_t done, int64_t total)>;

// A download that failed on the way (no network, refused, not found, timed out), as opposed to
// one that arrived with the wrong content.
class DownloadError : public DataError {
public:
    using DataError::DataError;
};

// Fetching stopped because the caller's stop flag was set.
class FetchStopped : public DataError {
public:
    using DataError::DataError;
};

struct DownloadLimits {
    long connect_timeout_s = 30;
    // A transfer slower than low_speed_bytes per second for low_speed_time_s seconds is a stall.
    long low_speed_bytes = 1;
    long low_speed_time_s = 120;
    // Tries of a transient failure (timeout, stall, cut transfer, HTTP 408/429/5xx). A missing host
    // or file, a refused connection or another HTTP error fails at once: retrying would not help.
    int attempts = 4;
    double first_backoff_s = 1.0;  // the wait before the second try, doubled for each later one
};

struct FetchHooks {
    MessageFn message;
    BytesFn bytes;
    const std::atomic<bool>* stop = nullptr;  // when it turns true the work ends in FetchStopped
    DownloadLimits limits;
};

// Downloads url (http, https or file) into out_path, which is created or truncated, and returns
// the md5 of the bytes written. Throws DownloadError (one line: the URL and the reason) when it
// cannot be had, FetchStopped when stopped, DataError when out_path cannot be written.
std::string download_file(const std::string& url, const std::string& out_path,
                          const std::string& name, const FetchHooks& hooks);

}  // namespace krause
