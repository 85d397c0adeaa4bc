// Shared helpers of the fuzz targets: a private scratch folder for readers that only take paths,
// the check that an error names its file, and seed writing for an empty corpus.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace krause::fuzz {

using Bytes = std::vector<uint8_t>;

// One folder per process on tmpfs when there is one; removed at exit, and the folders of
// processes that ended without exiting normally (a crash, a timeout) are removed at start.
inline const std::string& scratch_dir() {
    struct Dir {
        std::string path;
        Dir() {
            std::error_code ec;
            const std::filesystem::path base = std::filesystem::is_directory("/dev/shm", ec)
                                                   ? "/dev/shm"
                                                   : std::filesystem::temp_directory_path();
            const std::string prefix = "krause-fuzz-";
            for (const auto& e : std::filesystem::directory_iterator(base, ec)) {
                const std::string name = e.path().filename().string();
                if (name.rfind(prefix, 0) != 0) continue;
                const long pid = std::strtol(name.c_str() + prefix.size(), nullptr, 10);
                if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
                    std::filesystem::remove_all(e.path(), ec);
                }
            }
            path = (base / (prefix + std::to_string(::getpid()))).string();
            std::filesystem::create_directories(path);
        }
        ~Dir() {
            std::error_code ec;
            std::filesystem::remove_all(path, ec);
        }
    };
    static Dir dir;
    return dir.path;
}

inline void write_file(const std::string& path, const uint8_t* data, size_t size) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) {
        std::perror(path.c_str());
        std::abort();
    }
    if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
    std::fclose(f);
}

inline void write_file(const std::string& path, const Bytes& bytes) {
    write_file(path, bytes.data(), bytes.size());
}

// The readers promise messages that name the file; one that does not is a finding too.
inline void expect_names(const std::exception& e, const std::string& name) {
    const std::string what = e.what();
    if (what.find(name) == std::string::npos) {
        std::fprintf(stderr, "error message does not name '%s': %s\n", name.c_str(), what.c_str());
        std::abort();
    }
}

[[noreturn]] inline void unexpected(const char* kind, const std::exception* e) {
    std::fprintf(stderr, "undocumented exception escaped the reader: %s%s%s\n", kind, e ? ": " : "",
                 e ? e->what() : "");
    std::abort();
}

// KRAUSE_FUZZ_SEEDS=DIR makes a target write its seed inputs there and exit (scripts/fuzz.sh
// does this for an empty corpus); returns false when the variable is unset.
template <typename MakeSeeds>
bool maybe_write_seeds(MakeSeeds make) {
    const char* dir = std::getenv("KRAUSE_FUZZ_SEEDS");
    if (!dir || !*dir) return false;
    std::filesystem::create_directories(dir);
    int n = 0;
    for (const auto& [name, bytes] : make()) {
        write_file((std::filesystem::path(dir) / name).string(), bytes);
        ++n;
    }
    std::fprintf(stderr, "wrote %d seeds to %s\n", n, dir);
    std::exit(0);
}

inline void put_be32(Bytes& out, uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(uint8_t(v >> s));
}

inline Bytes text(const std::string& s) {
    return Bytes(s.begin(), s.end());
}

}  // namespace krause::fuzz
