// Safetensors reader and writer: every header field is checked against the file before a tensor is
// allocated, and files are replaced atomically through a fsynced temporary file.
#include "model/safetensors.h"

#include <nlohmann/json.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <set>

namespace krause {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors data is little-endian and is copied without byte swapping");

using Json = nlohmann::json;

// The reference implementation's limit; it keeps a hostile length from driving a huge allocation.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr const char* kMetadataKey = "__metadata__";

[[noreturn]] void fail(const std::string& name, const std::string& problem) {
    throw CheckpointError(name + ": " + problem);
}

std::string errno_text(int err) {
    return std::strerror(err);
}

struct Dtype {
    const char* tag;
    at::ScalarType type;
    uint64_t itemsize;
};

const Dtype kDtypes[] = {
    {"F64", at::kDouble, 8}, {"F32", at::kFloat, 4}, {"BF16", at::kBFloat16, 2},
    {"F16", at::kHalf, 2},   {"I64", at::kLong, 8},  {"I32", at::kInt, 4},
    {"I16", at::kShort, 2},  {"I8", at::kChar, 1},   {"U8", at::kByte, 1},
    {"BOOL", at::kBool, 1},
};

// Valid in the format but without a LibTorch 1.13 equivalent; named separately so the message
// says "unsupported" rather than suggesting the file is corrupt.
const char* const kUnsupportedDtypes[] = {"U16",     "U32",     "U64",  "F8_E4M3",
                                          "F8_E5M2", "F8_E8M0", "E8M0", "F6_E2M3",
                                          "F6_E3M2", "F4",      "C64",  "C128"};

const Dtype* dtype_by_tag(const std::string& tag) {
    for (const Dtype& d : kDtypes) {
        if (tag == d.tag) return &d;
    }
    return nullptr;
}

const Dtype* dtype_by_type(at::ScalarType type) {
    for (const Dtype& d : kDtypes) {
        if (type == d.type) return &d;
    }
    return nullptr;
}

bool is_unsupported_tag(const std::string& tag) {
    for (const char* t : kUnsupportedDtypes) {
        if (tag == t) return true;
    }
    return false;
}

std::string shape_text(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) {
        if (i) s += ", ";
        s += std::to_string(shape[i]);
    }
    return s + "]";
}

std::string offsets_text(uint64_t begin, uint64_t end) {
    return "[" + std::to_string(begin) + ", " + std::to_string(end) + "]";
}

struct Entry {
    std::string name;
    const Dtype* dtype = nullptr;
    std::vector<int64_t> shape;
    uint64_t begin = 0;
    uint64_t end = 0;
};

struct Layout {
    std::vector<Entry> entries;  // sorted by data offsets, covering the data buffer exactly
    Metadata metadata;
};

// nlohmann::json keeps the last of repeated keys silently; a SAX pass catches them so that two
// entries for one tensor name cannot hide each other.
class DuplicateKeyFinder : public nlohmann::json_sax<Json> {
public:
    bool found = false;
    std::string duplicate;

    bool null() override { return true; }
    bool boolean(bool) override { return true; }
    bool number_integer(number_integer_t) override { return true; }
    bool number_unsigned(number_unsigned_t) override { return true; }
    bool number_float(number_float_t, const string_t&) override { return true; }
    bool string(string_t&) override { return true; }
    bool binary(binary_t&) override { return true; }
    bool start_object(std::size_t) override {
        open_objects_.emplace_back();
        return true;
    }
    bool key(string_t& key) override {
        if (!open_objects_.back().insert(key).second) {
            found = true;
            duplicate = key;
            return false;
        }
        return true;
    }
    bool end_object() override {
        open_objects_.pop_back();
        return true;
    }
    bool start_array(std::size_t) override { return true; }
    bool end_array() override { return true; }
    bool parse_error(std::size_t, const std::string&, const Json::exception&) override {
        return false;
    }

private:
    std::vector<std::set<std::string>> open_objects_;
};

uint64_t load_u64_le(const uint8_t* p) {
    uint64_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

void check_file_size(const std::string& name, uint64_t file_size) {
    if (file_size < 8) {
        fail(name, "file too small: " + std::to_string(file_size) +
                       " bytes, a safetensors file has at least the 8-byte header length");
    }
}

void check_header_length(const std::string& name, uint64_t file_size, uint64_t header_len) {
    // A length beyond both the file and any real header means the first 8 bytes are not a length
    // at all (a text file, an image, another format), not that a checkpoint was cut short.
    if (header_len > file_size - 8 && header_len > kMaxHeaderBytes) {
        fail(name, "not a safetensors checkpoint: its first 8 bytes give a header length of " +
                       std::to_string(header_len) + " bytes, but the file has only " +
                       std::to_string(file_size) + " bytes");
    }
    if (header_len > file_size - 8) {
        fail(name, "truncated: header length is " + std::to_string(header_len) +
                       " bytes, file has " + std::to_string(file_size - 8) +
                       " bytes after the length field");
    }
    if (header_len > kMaxHeaderBytes) {
        fail(name, "header length " + std::to_string(header_len) + " exceeds the limit of " +
                       std::to_string(kMaxHeaderBytes) + " bytes");
    }
}

// Non-negative JSON integer; `negative` tells a negative integer apart from a non-integer.
bool json_to_u64(const Json& j, uint64_t& out, bool& negative) {
    negative = false;
    if (j.is_number_unsigned()) {
        out = j.get<uint64_t>();
        return true;
    }
    if (j.is_number_integer()) {
        const int64_t v = j.get<int64_t>();
        if (v < 0) {
            negative = true;
            return false;
        }
        out = static_cast<uint64_t>(v);
        return true;
    }
    return false;
}

Entry parse_entry(const std::string& file, const std::string& name, const Json& value) {
    const std::string where = "tensor '" + name + "': ";
    if (name.empty()) fail(file, "tensor with an empty name");
    if (!value.is_object()) fail(file, where + "entry is not an object");

    Entry e;
    e.name = name;

    const auto dtype_it = value.find("dtype");
    if (dtype_it == value.end()) fail(file, where + "missing 'dtype'");
    if (!dtype_it->is_string()) fail(file, where + "'dtype' is not a string");
    const std::string tag = dtype_it->get<std::string>();
    e.dtype = dtype_by_tag(tag);
    if (!e.dtype) {
        fail(file, where + (is_unsupported_tag(tag) ? "unsupported dtype '" : "unknown dtype '") +
                       tag + "'");
    }

    const auto shape_it = value.find("shape");
    if (shape_it == value.end()) fail(file, where + "missing 'shape'");
    if (!shape_it->is_array()) fail(file, where + "'shape' is not an array");
    // ATen computes contiguous strides as products of max(dim, 1), so those must fit in int64 even
    // when a zero dimension makes the tensor empty.
    int64_t stride_product = 1;
    int64_t numel = 1;
    for (const Json& dim : *shape_it) {
        uint64_t d = 0;
        bool negative = false;
        if (!json_to_u64(dim, d, negative)) {
            if (negative) fail(file, where + "negative shape entry " + dim.dump());
            fail(file, where + "shape entry " + dim.dump() + " is not an integer");
        }
        if (d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
            fail(file, where + "shape entry " + std::to_string(d) + " is too large");
        }
        const auto di = static_cast<int64_t>(d);
        if (__builtin_mul_overflow(stride_product, std::max<int64_t>(di, 1), &stride_product)) {
            fail(file, where + "shape has too many elements: its product overflows int64");
        }
        numel *= di;  // cannot overflow: |numel| <= stride_product
        e.shape.push_back(di);
    }

    const auto offsets_it = value.find("data_offsets");
    if (offsets_it == value.end()) fail(file, where + "missing 'data_offsets'");
    if (!offsets_it->is_array() || offsets_it->size() != 2) {
        fail(file,
             where + "'data_offsets' must be an array [begin, end], got " + offsets_it->dump());
    }
    bool negative = false;
    if (!json_to_u64((*offsets_it)[0], e.begin, negative) ||
        !json_to_u64((*offsets_it)[1], e.end, negative)) {
        fail(file, where + "'data_offsets' must hold two non-negative integers, got " +
                       offsets_it->dump());
    }
    if (e.begin > e.end) {
        fail(file,
             where + "data_offsets " + offsets_text(e.begin, e.end) + " begin after they end");
    }

    uint64_t nbytes = 0;
    const bool too_big =
        __builtin_mul_overflow(static_cast<uint64_t>(numel), e.dtype->itemsize, &nbytes);
    if (too_big || nbytes != e.end - e.begin) {
        fail(file, where + "size mismatch: shape " + shape_text(e.shape) + " of " + e.dtype->tag +
                       " needs " +
                       (too_big ? std::string("more than 2^64") : std::to_string(nbytes)) +
                       " bytes, data_offsets " + offsets_text(e.begin, e.end) + " span " +
                       std::to_string(e.end - e.begin));
    }
    return e;
}

Metadata parse_metadata(const std::string& file, const Json& value) {
    if (!value.is_object()) fail(file, "__metadata__ is not an object");
    Metadata metadata;
    for (auto it = value.begin(); it != value.end(); ++it) {
        if (!it.value().is_string())
            fail(file, "metadata value for '" + it.key() + "' is not a string");
        metadata.emplace(it.key(), it.value().get<std::string>());
    }
    return metadata;
}

Layout parse_header_unguarded(const std::string& file, const char* header, size_t header_len,
                              uint64_t data_size) {
    // nlohmann's lexer takes a NUL byte for the end of input and would ignore whatever follows it;
    // valid JSON never contains a raw NUL, so one is always damage.
    if (std::memchr(header, '\0', header_len) != nullptr)
        fail(file, "header is not valid JSON (contains a NUL byte)");
    DuplicateKeyFinder finder;
    const bool well_formed = Json::sax_parse(header, header + header_len, &finder);
    if (finder.found) fail(file, "duplicate key '" + finder.duplicate + "' in header");
    if (!well_formed) fail(file, "header is not valid JSON");

    const Json root = Json::parse(header, header + header_len, nullptr, false);
    if (root.is_discarded()) fail(file, "header is not valid JSON");
    if (!root.is_object()) fail(file, "header is not a JSON object");

    Layout layout;
    for (auto it = root.begin(); it != root.end(); ++it) {
        if (it.key() == kMetadataKey) {
            layout.metadata = parse_metadata(file, it.value());
        } else {
            layout.entries.push_back(parse_entry(file, it.key(), it.value()));
        }
    }

    const Entry* last = nullptr;
    for (const Entry& e : layout.entries) {
        if (!last || e.end > last->end) last = &e;
    }
    if (last && last->end > data_size) {
        fail(file, "truncated: header says " + std::to_string(last->end) +
                       " bytes of data, file has " + std::to_string(data_size) + " (tensor '" +
                       last->name + "' has data_offsets " + offsets_text(last->begin, last->end) +
                       ")");
    }

    std::stable_sort(layout.entries.begin(), layout.entries.end(),
                     [](const Entry& a, const Entry& b) {
                         return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
                     });
    uint64_t covered = 0;
    const Entry* previous = nullptr;
    for (const Entry& e : layout.entries) {
        if (e.begin < covered) {
            fail(file, "tensor '" + e.name + "' data_offsets " + offsets_text(e.begin, e.end) +
                           " overlap tensor '" + previous->name + "' " +
                           offsets_text(previous->begin, previous->end));
        }
        if (e.begin > covered) {
            fail(file, "gap in data: bytes " + offsets_text(covered, e.begin) +
                           " belong to no tensor (before tensor '" + e.name + "')");
        }
        covered = e.end;
        previous = &e;
    }
    if (covered != data_size) {
        fail(file, "gap in data: bytes " + offsets_text(covered, data_size) +
                       " after the last tensor belong to no tensor");
    }
    return layout;
}

Layout parse_header(const std::string& file, const char* header, size_t header_len,
                    uint64_t data_size) {
    try {
        return parse_header_unguarded(file, header, header_len, data_size);
    } catch (const CheckpointError&) {
        throw;
    } catch (const std::exception& ex) {
        fail(file, std::string("invalid header: ") + ex.what());
    }
}

void check_bool_bytes(const std::string& file, const Entry& e, const uint8_t* bytes) {
    if (e.dtype->type != at::kBool) return;
    for (uint64_t i = 0; i < e.end - e.begin; ++i) {
        if (bytes[i] > 1) {
            fail(file, "tensor '" + e.name + "': BOOL element " + std::to_string(i) +
                           " has byte value " + std::to_string(bytes[i]) + ", must be 0 or 1");
        }
    }
}

at::Tensor allocate(const std::string& file, const Entry& e) {
    try {
        return at::empty(e.shape, at::TensorOptions().dtype(e.dtype->type).device(at::kCPU));
    } catch (const std::exception& ex) {
        fail(file, "tensor '" + e.name + "': cannot allocate " + std::to_string(e.end - e.begin) +
                       " bytes (" + ex.what() + ")");
    }
}

// Turns anything unexpected (bad_alloc, a LibTorch error) into the one exception type callers
// handle.
template <typename F>
auto guarded(const std::string& name, F&& body) -> decltype(body()) {
    try {
        return body();
    } catch (const CheckpointError&) {
        throw;
    } catch (const std::exception& ex) {
        fail(name, ex.what());
    }
}

struct FileCloser {
    void operator()(std::FILE* f) const { std::fclose(f); }
};

void read_exact(const std::string& path, std::FILE* f, void* dst, size_t n) {
    if (n == 0) return;
    if (std::fread(dst, 1, n, f) != n) {
        const int err = errno;
        if (std::ferror(f)) fail(path, "read error (" + errno_text(err) + ")");
        fail(path, "truncated: file ended while reading (did it change while being read?)");
    }
}

SafetensorsFile read_file(const std::string& path) {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait forever for a writer; the
    // regular-file check below rejects it. Reads from a regular file ignore the flag.
    const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        const int err = errno;
        fail(path, "cannot open (" + errno_text(err) + ")");
    }
    std::unique_ptr<std::FILE, FileCloser> file(::fdopen(fd, "rb"));
    if (!file) {
        const int err = errno;
        ::close(fd);
        fail(path, "cannot open (" + errno_text(err) + ")");
    }
    struct stat st {};
    if (::fstat(::fileno(file.get()), &st) != 0) {
        const int err = errno;
        fail(path, "cannot stat (" + errno_text(err) + ")");
    }
    if (!S_ISREG(st.st_mode)) fail(path, "not a regular file");
    const auto file_size = static_cast<uint64_t>(st.st_size);

    check_file_size(path, file_size);
    uint8_t prefix[8];
    read_exact(path, file.get(), prefix, sizeof prefix);
    const uint64_t header_len = load_u64_le(prefix);
    check_header_length(path, file_size, header_len);
    std::string header(static_cast<size_t>(header_len), '\0');
    read_exact(path, file.get(), header.data(), header.size());
    Layout layout = parse_header(path, header.data(), header.size(), file_size - 8 - header_len);

    // The entries are sorted and gap-free, so the data buffer is read front to back straight into
    // the tensors; their sizes are bounded by the file size checked above.
    SafetensorsFile out;
    out.tensors.reserve(layout.entries.size());
    for (const Entry& e : layout.entries) {
        at::Tensor t = allocate(path, e);
        read_exact(path, file.get(), t.data_ptr(), static_cast<size_t>(e.end - e.begin));
        check_bool_bytes(path, e, static_cast<const uint8_t*>(t.data_ptr()));
        out.tensors.emplace_back(e.name, std::move(t));
    }
    out.metadata = std::move(layout.metadata);
    return out;
}

SafetensorsFile parse_buffer(const std::string& name, const uint8_t* data, size_t size) {
    check_file_size(name, size);
    const uint64_t header_len = load_u64_le(data);
    check_header_length(name, size, header_len);
    const uint64_t data_size = size - 8 - header_len;
    Layout layout = parse_header(name, reinterpret_cast<const char*>(data + 8),
                                 static_cast<size_t>(header_len), data_size);
    const uint8_t* buffer = data + 8 + header_len;
    for (const Entry& e : layout.entries) check_bool_bytes(name, e, buffer + e.begin);

    SafetensorsFile out;
    out.tensors.reserve(layout.entries.size());
    for (const Entry& e : layout.entries) {
        at::Tensor t = allocate(name, e);
        if (e.end > e.begin)
            std::memcpy(t.data_ptr(), buffer + e.begin, static_cast<size_t>(e.end - e.begin));
        out.tensors.emplace_back(e.name, std::move(t));
    }
    out.metadata = std::move(layout.metadata);
    return out;
}

std::string json_string(const std::string& path, const std::string& text, const std::string& what) {
    try {
        return Json(text).dump();
    } catch (const Json::exception&) {
        fail(path, what + " is not valid UTF-8");
    }
}

// Owns the temporary file until it has been renamed into place; on any failure before that it is
// closed and unlinked so no partial checkpoint is left behind.
class TempFile {
public:
    TempFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    ~TempFile() {
        if (fd_ >= 0) ::close(fd_);
        if (!committed_) ::unlink(path_.c_str());
    }
    int fd() const { return fd_; }
    // Returns 0 or the errno of close(), which can report a deferred write error.
    int close() {
        const int result = ::close(fd_);
        fd_ = -1;
        return result == 0 ? 0 : errno;
    }
    void commit() { committed_ = true; }

private:
    std::string path_;
    int fd_;
    bool committed_ = false;
};

void write_all(const std::string& path, const std::string& tmp, int fd, const void* data,
               size_t n) {
    const auto* p = static_cast<const uint8_t*>(data);
    while (n > 0) {
        // Linux caps a single write near 2 GiB; smaller chunks keep every call well inside that.
        const size_t chunk = std::min<size_t>(n, size_t{1} << 30);
        const ssize_t written = ::write(fd, p, chunk);
        if (written < 0) {
            const int err = errno;
            if (err == EINTR) continue;
            fail(path, "cannot write temporary file '" + tmp + "' (" + errno_text(err) + ")");
        }
        if (written == 0)
            fail(path, "cannot write temporary file '" + tmp + "' (write returned 0)");
        p += written;
        n -= static_cast<size_t>(written);
    }
}

std::string parent_directory(const std::string& path) {
    const size_t slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

void sync_directory(const std::string& path) {
    const std::string dir = parent_directory(path);
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        const int err = errno;
        fail(path, "written, but cannot open directory '" + dir + "' to sync it (" +
                       errno_text(err) + ")");
    }
    // Some filesystems cannot fsync a directory (EINVAL); the rename is then as durable as it gets.
    const int result = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    if (result != 0 && err != EINVAL) {
        fail(path, "written, but cannot sync directory '" + dir + "' (" + errno_text(err) + ")");
    }
}

// A process killed while writing leaves its "<path>.tmp.<pid>" behind, as large as the file; the
// next successful write removes those whose process is gone, so repeated kills cannot fill the
// disk. Best effort: errors are ignored, and a temp file of a live process is never touched.
void remove_stale_temp_files(const std::string& path) {
    const std::string dir = parent_directory(path);
    const size_t slash = path.find_last_of('/');
    const std::string prefix =
        (slash == std::string::npos ? path : path.substr(slash + 1)) + ".tmp.";
    DIR* d = ::opendir(dir.c_str());
    if (!d) return;
    while (const dirent* e = ::readdir(d)) {
        const std::string name = e->d_name;
        if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
        const std::string digits = name.substr(prefix.size());
        if (digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos)
            continue;
        const pid_t pid = static_cast<pid_t>(std::stol(digits));
        if (pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
        ::unlink((dir + "/" + name).c_str());
    }
    ::closedir(d);
}

void write_file(const std::string& path, const NamedTensors& tensors, const Metadata& metadata) {
    std::set<std::string> seen;
    std::vector<at::Tensor> cpu;
    std::vector<const Dtype*> dtypes;
    cpu.reserve(tensors.size());
    dtypes.reserve(tensors.size());
    for (const auto& [name, tensor] : tensors) {
        if (name.empty()) fail(path, "cannot write a tensor with an empty name");
        if (name == kMetadataKey)
            fail(path, std::string("tensor name '") + kMetadataKey + "' is reserved");
        if (!seen.insert(name).second) fail(path, "duplicate tensor name '" + name + "'");
        if (!tensor.defined()) fail(path, "tensor '" + name + "' is undefined");
        const Dtype* dtype = dtype_by_type(tensor.scalar_type());
        if (!dtype) {
            fail(path, "tensor '" + name + "': dtype " +
                           std::string(c10::toString(tensor.scalar_type())) +
                           " cannot be stored in safetensors");
        }
        cpu.push_back(tensor.detach().to(at::kCPU).resolve_conj().resolve_neg().contiguous());
        dtypes.push_back(dtype);
    }

    std::string header = "{";
    if (!metadata.empty()) {
        header += "\"__metadata__\":{";
        bool first = true;
        for (const auto& [key, value] : metadata) {
            if (!first) header += ",";
            first = false;
            header += json_string(path, key, "metadata key") + ":" +
                      json_string(path, value, "metadata value for '" + key + "'");
        }
        header += "}";
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < cpu.size(); ++i) {
        const uint64_t nbytes = static_cast<uint64_t>(cpu[i].numel()) * dtypes[i]->itemsize;
        if (header.size() > 1) header += ",";
        std::string shape = "[";
        for (int64_t d = 0; d < cpu[i].dim(); ++d) {
            if (d) shape += ",";
            shape += std::to_string(cpu[i].size(d));
        }
        shape += "]";
        header += json_string(path, tensors[i].first, "tensor name '" + tensors[i].first + "'") +
                  ":{\"dtype\":\"" + dtypes[i]->tag + "\",\"shape\":" + shape +
                  ",\"data_offsets\":[" + std::to_string(offset) + "," +
                  std::to_string(offset + nbytes) + "]}";
        offset += nbytes;
    }
    header += "}";
    // Padding keeps the data buffer 8-byte aligned for readers that map the file.
    header.append((8 - header.size() % 8) % 8, ' ');
    if (header.size() > kMaxHeaderBytes) {
        fail(path, "header of " + std::to_string(header.size()) + " bytes exceeds the limit of " +
                       std::to_string(kMaxHeaderBytes));
    }

    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        const int err = errno;
        fail(path, "cannot create temporary file '" + tmp + "' (" + errno_text(err) + ")");
    }
    TempFile temp(tmp, fd);

    uint8_t prefix[8];
    const uint64_t header_len = header.size();
    std::memcpy(prefix, &header_len, sizeof prefix);
    write_all(path, tmp, temp.fd(), prefix, sizeof prefix);
    write_all(path, tmp, temp.fd(), header.data(), header.size());
    for (size_t i = 0; i < cpu.size(); ++i) {
        const auto nbytes =
            static_cast<size_t>(cpu[i].numel() * static_cast<int64_t>(dtypes[i]->itemsize));
        if (nbytes > 0) write_all(path, tmp, temp.fd(), cpu[i].data_ptr(), nbytes);
    }
    if (::fsync(temp.fd()) != 0) {
        const int err = errno;
        fail(path, "cannot sync temporary file '" + tmp + "' (" + errno_text(err) + ")");
    }
    if (const int err = temp.close()) {
        fail(path, "cannot close temporary file '" + tmp + "' (" + errno_text(err) + ")");
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        const int err = errno;
        fail(path, "cannot rename '" + tmp + "' over it (" + errno_text(err) + ")");
    }
    temp.commit();
    sync_directory(path);
    remove_stale_temp_files(path);
}

}  // namespace

void write_safetensors(const std::string& path, const NamedTensors& tensors,
                       const Metadata& metadata) {
    guarded(path, [&] { write_file(path, tensors, metadata); });
}

SafetensorsFile read_safetensors(const std::string& path) {
    return guarded(path, [&] { return read_file(path); });
}

SafetensorsFile parse_safetensors(const std::string& name, const uint8_t* data, size_t size) {
    return guarded(name, [&] { return parse_buffer(name, data, size); });
}

}  // namespace krause
