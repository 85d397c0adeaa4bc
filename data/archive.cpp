// extract_tar over libarchive's streaming reader: members are visited in order and only the
// wanted ones are copied out; the rest are skipped without being decompressed to disk.
#include "data/archive.h"
#include "data/temp_file.h"

#include <archive.h>
#include <archive_entry.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <set>

namespace krause {

namespace fs = std::filesystem;

namespace {

std::string normalise_member(std::string name) {
    while (name.rfind("./", 0) == 0) name.erase(0, 2);
    return name;
}

struct ReaderDeleter {
    void operator()(struct archive* a) const { archive_read_free(a); }
};
using Reader = std::unique_ptr<struct archive, ReaderDeleter>;

[[noreturn]] void fail(struct archive* a, const std::string& path) {
    const char* why = archive_error_string(a);
    throw DataError(path + ": " + (why != nullptr ? why : "unreadable tar archive"));
}

// Copies the current member's data into out_path; returns the number of bytes written.
int64_t copy_member(struct archive* a, const std::string& archive_path, const std::string& out_path,
                    const FetchHooks& hooks) {
    std::FILE* f = std::fopen(out_path.c_str(), "wb");
    if (f == nullptr) throw DataError(out_path + ": cannot create: " + std::strerror(errno));
    int64_t written = 0;
    try {
        while (true) {
            if (hooks.stop != nullptr && hooks.stop->load())
                throw FetchStopped(archive_path + ": stopped");
            const void* block = nullptr;
            size_t size = 0;
            la_int64_t offset = 0;
            const int r = archive_read_data_block(a, &block, &size, &offset);
            if (r == ARCHIVE_EOF) break;
            if (r < ARCHIVE_WARN) fail(a, archive_path);
            // Sparse members come with holes between blocks: seeking leaves zeros behind.
            if (offset != written && std::fseek(f, long(offset), SEEK_SET) != 0)
                throw DataError(out_path + ": seek failed: " + std::strerror(errno));
            if (size > 0 && std::fwrite(block, 1, size, f) != size)
                throw DataError(out_path + ": write failed: " + std::strerror(errno));
            written = offset + int64_t(size);
        }
    } catch (...) {
        std::fclose(f);
        throw;
    }
    if (std::fclose(f) != 0) throw DataError(out_path + ": write failed: " + std::strerror(errno));
    return written;
}

}  // namespace

void extract_tar(const std::string& archive, const std::string& dest_dir,
                 const std::vector<std::string>& members, const FetchHooks& hooks) {
    std::set<std::string> wanted;
    for (const auto& m : members) wanted.insert(normalise_member(m));
    Reader reader(archive_read_new());
    if (!reader) throw DataError(archive + ": libarchive could not start a reader");
    struct archive* a = reader.get();
    archive_read_support_format_tar(a);
    archive_read_support_filter_gzip(a);
    std::error_code ec;
    if (fs::is_directory(archive, ec))
        throw DataError(archive + ": is a directory, expected a file");
    if (archive_read_open_filename(a, archive.c_str(), size_t(1) << 16) != ARCHIVE_OK)
        fail(a, archive);
    std::set<std::string> found;
    struct archive_entry* entry = nullptr;
    while (true) {
        const int r = archive_read_next_header(a, &entry);
        if (r == ARCHIVE_EOF) break;
        if (r < ARCHIVE_WARN) fail(a, archive);
        const char* stored = archive_entry_pathname(entry);
        const std::string name = normalise_member(stored != nullptr ? stored : "");
        if (archive_entry_filetype(entry) != AE_IFREG || !wanted.count(name) || found.count(name)) {
            if (archive_read_data_skip(a) < ARCHIVE_WARN) fail(a, archive);
            continue;
        }
        const fs::path out = fs::path(dest_dir) / name;
        fs::create_directories(out.parent_path(), ec);
        if (ec)
            throw DataError(out.parent_path().string() + ": cannot create folder: " + ec.message());
        const std::string tmp = out.string() + ".part-" + std::to_string(getpid());
        TempFile guard(tmp);
        const int64_t size = copy_member(a, archive, tmp, hooks);
        if (std::rename(tmp.c_str(), out.string().c_str()) != 0)
            throw DataError(out.string() + ": cannot move into place: " + std::strerror(errno));
        guard.release();
        found.insert(name);
        if (hooks.message)
            hooks.message("extracted " + name + " (" + std::to_string(size) + " bytes)");
    }
    for (const auto& w : wanted) {
        if (!found.count(w))
            throw DataError(archive + ": member " + w + " not found in the tar archive");
    }
}

}  // namespace krause
