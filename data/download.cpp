// download_file: a libcurl easy transfer per attempt, written to disk and hashed as it arrives, so
// a download is read once; transient failures are tried again after a growing pause.
#include "data/download.h"

#include <curl/curl.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <mutex>
#include <thread>

#include "data/checksum.h"

namespace krause {

namespace fs = std::filesystem;

namespace {

// What the callbacks of one attempt share with it. Callbacks run inside libcurl's C code: nothing
// may be thrown through it, so a failure is recorded here and the transfer aborted.
struct Transfer {
    std::FILE* out = nullptr;
    Md5 md5;
    int write_errno = 0;
    std::exception_ptr hook_error;
    const FetchHooks* hooks = nullptr;
    const std::string* name = nullptr;
};

size_t on_data(char* data, size_t size, size_t count, void* user) {
    auto* t = static_cast<Transfer*>(user);
    const size_t n = size * count;
    if (std::fwrite(data, 1, n, t->out) != n) {
        t->write_errno = errno != 0 ? errno : EIO;
        return 0;  // libcurl ends the transfer with CURLE_WRITE_ERROR
    }
    t->md5.update(reinterpret_cast<const uint8_t*>(data), n);
    return n;
}

int on_progress(void* user, curl_off_t total, curl_off_t done, curl_off_t, curl_off_t) {
    auto* t = static_cast<Transfer*>(user);
    if (t->hooks->stop != nullptr && t->hooks->stop->load()) return 1;
    if (t->hooks->bytes) {
        try {
            t->hooks->bytes(*t->name, int64_t(done), int64_t(total));
        } catch (...) {
            t->hook_error = std::current_exception();
            return 1;
        }
    }
    return 0;
}

struct Outcome {
    CURLcode code = CURLE_OK;
    long http_status = 0;
    std::string reason;
    std::string md5;
};

bool transient(const Outcome& o) {
    switch (o.code) {
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_PARTIAL_FILE:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
            return true;
        case CURLE_HTTP_RETURNED_ERROR:
            return o.http_status == 408 || o.http_status == 429 || o.http_status >= 500;
        default:
            return false;
    }
}

class Easy {
public:
    Easy() {
        static std::once_flag once;
        std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
        handle_ = curl_easy_init();
        if (handle_ == nullptr) throw DataError("libcurl could not start a transfer");
    }
    ~Easy() { curl_easy_cleanup(handle_); }
    Easy(const Easy&) = delete;
    Easy& operator=(const Easy&) = delete;
    CURL* get() const { return handle_; }

private:
    CURL* handle_ = nullptr;
};

Outcome attempt(const std::string& url, const std::string& out_path, const std::string& name,
                const FetchHooks& hooks) {
    Transfer t;
    t.hooks = &hooks;
    t.name = &name;
    Easy easy;
    CURL* c = easy.get();
    t.out = std::fopen(out_path.c_str(), "wb");
    if (t.out == nullptr) throw DataError(out_path + ": cannot create: " + std::strerror(errno));
    char error_text[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error_text);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https,file");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(c, CURLOPT_PROTOCOLS, long(CURLPROTO_HTTP | CURLPROTO_HTTPS | CURLPROTO_FILE));
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS, long(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // jobs run on worker threads
    curl_easy_setopt(c, CURLOPT_USERAGENT, "krause-studio/0.1");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, hooks.limits.connect_timeout_s);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, hooks.limits.low_speed_bytes);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, hooks.limits.low_speed_time_s);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);

    Outcome o;
    o.code = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &o.http_status);
    const bool closed = std::fclose(t.out) == 0;
    if (t.hook_error) std::rethrow_exception(t.hook_error);
    if (o.code == CURLE_ABORTED_BY_CALLBACK) throw FetchStopped(name + ": stopped");
    if (o.code == CURLE_WRITE_ERROR && t.write_errno != 0)
        throw DataError(out_path + ": write failed: " + std::strerror(t.write_errno));
    if (o.code == CURLE_OK && !closed)
        throw DataError(out_path + ": write failed: " + std::strerror(errno));
    o.reason = error_text[0] != 0 ? error_text : curl_easy_strerror(o.code);
    if (o.code == CURLE_OK) o.md5 = t.md5.hex_digest();
    return o;
}

// Waits, but returns early (false) when the stop flag is set.
bool pause_unless_stopped(double seconds, const std::atomic<bool>* stop) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < until) {
        if (stop != nullptr && stop->load()) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
}

// The path of a file:// URL, percent-escapes decoded; "" for other URLs.
std::string local_path(const std::string& url) {
    if (url.rfind("file://", 0) != 0) return "";
    std::string path = url.substr(7);
    if (path.rfind("localhost/", 0) == 0) path.erase(0, 9);
    int length = 0;
    char* decoded = curl_easy_unescape(nullptr, path.c_str(), int(path.size()), &length);
    if (decoded == nullptr) return path;
    std::string out(decoded, size_t(length));
    curl_free(decoded);
    return out;
}

}  // namespace

std::string download_file(const std::string& url, const std::string& out_path,
                          const std::string& name, const FetchHooks& hooks) {
    // libcurl would wait forever on a FIFO of a local mirror (no writer) and read a folder as an
    // empty file: from a local mirror only regular files are taken.
    const std::string local = local_path(url);
    std::error_code ec;
    if (!local.empty() && fs::exists(local, ec) && !fs::is_regular_file(local, ec))
        throw DownloadError(url + ": not a regular file");
    const int attempts = std::max(1, hooks.limits.attempts);
    double backoff = hooks.limits.first_backoff_s;
    for (int n = 1;; ++n) {
        const Outcome o = attempt(url, out_path, name, hooks);
        if (o.code == CURLE_OK) return o.md5;
        if (n >= attempts || !transient(o)) {
            const std::string tries = n > 1 ? " (" + std::to_string(n) + " tries)" : "";
            throw DownloadError(url + ": " + o.reason + tries);
        }
        if (hooks.message) {
            hooks.message(name + ": " + o.reason + "; trying again in " +
                          std::to_string(int(backoff + 0.5)) + " s (" + std::to_string(n + 1) +
                          " of " + std::to_string(attempts) + ")");
        }
        if (!pause_unless_stopped(backoff, hooks.stop)) throw FetchStopped(name + ": stopped");
        backoff *= 2;
    }
}

}  // namespace krause
