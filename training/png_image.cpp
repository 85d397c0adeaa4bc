// PNG prompt images: checked for kind, size, signature and chunk layout before stb_image decodes
// them. Shared by the CLI (--image FILE.png) and the studio (a drawn prompt loaded from a file).
#include "training/png_image.h"

#include <stb/stb_image.h>

#include <cctype>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace krause {

namespace {

// Prompts are as small as the models' images (28x28, 32x32): a file far larger than any such PNG
// is refused unread.
constexpr std::uintmax_t kMaxPngBytes = std::uintmax_t(16) << 20;
constexpr unsigned char kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

uint32_t be32(const unsigned char* p) {
    return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

// Walks the chunks (length, type, data, CRC) up to IEND: each must lie inside the file. stb_image
// allocates the length an IDAT chunk claims before it reads it (2 GB for a few damaged bytes), so
// only a file whose chunks all fit is handed to it. Returns "" or what is wrong.
std::string check_png_chunks(const std::vector<unsigned char>& bytes) {
    size_t at = sizeof kSignature;
    while (at < bytes.size()) {
        if (bytes.size() - at < 12) return "truncated chunk header at byte " + std::to_string(at);
        const uint32_t length = be32(&bytes[at]);
        const std::string type(reinterpret_cast<const char*>(&bytes[at + 4]), 4);
        for (char c : type) {
            if (!std::isalpha(static_cast<unsigned char>(c)))
                return "damaged chunk type at byte " + std::to_string(at + 4);
        }
        if (length > bytes.size() - at - 12) {
            return "chunk " + type + " claims " + std::to_string(length) + " bytes, the file has " +
                   std::to_string(bytes.size() - at - 12) + " after its header";
        }
        at += 12 + size_t(length);
        if (type == "IEND") return "";
    }
    return "no IEND chunk (truncated file)";
}

// stb's reason can hold raw bytes of the file (the type of an unknown chunk): keep it one line.
std::string png_failure(const std::string& path) {
    std::string reason = stbi_failure_reason() ? stbi_failure_reason() : "unknown error";
    for (char& c : reason) {
        if (!std::isprint(static_cast<unsigned char>(c))) c = '?';
    }
    return path + ": not a readable PNG (" + reason + ")";
}

}  // namespace

std::vector<uint8_t> read_png_tokens(const std::string& path, int64_t height, int64_t width,
                                     int64_t channels) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) throw ImageFileError(path + ": no such image file", "");
    // A FIFO would block the read forever, and a directory is no image.
    if (!std::filesystem::is_regular_file(path, ec))
        throw ImageFileError(path + ": not a regular file", "pass a .png image file");
    const std::uintmax_t size = std::filesystem::file_size(path, ec);
    if (ec || size > kMaxPngBytes) {
        throw ImageFileError(path + ": " + (ec ? ec.message() : std::to_string(size) + " bytes") +
                             ", not a prompt image of " + std::to_string(width) + "x" +
                             std::to_string(height),
                         "pass a .png image file");
    }
    std::vector<unsigned char> bytes(static_cast<size_t>(size));
    std::ifstream in(path, std::ios::binary);
    in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!in || in.gcount() != static_cast<std::streamsize>(bytes.size()))
        throw ImageFileError(path + ": cannot read the file", "");
    // stb_image picks its decoder by the content, whatever the name: only a file with the PNG
    // signature is handed to it, so its other decoders (some crash on crafted files, e.g. PIC)
    // are never reached from here.
    if (bytes.size() < sizeof kSignature || std::memcmp(bytes.data(), kSignature, 8) != 0)
        throw ImageFileError(path + ": not a PNG file (no PNG signature)", "pass a .png image file");
    const std::string damage = check_png_chunks(bytes);
    if (!damage.empty()) throw ImageFileError(path + ": damaged PNG (" + damage + ")", "");
    // The header first: only an image of the model's shape is decoded.
    const int len = static_cast<int>(bytes.size());
    int w = 0, h = 0, n = 0;
    if (!stbi_info_from_memory(bytes.data(), len, &w, &h, &n))
        throw ImageFileError(png_failure(path), "");
    if (h != height || w != width) {
        throw ImageFileError(path + ": image is " + std::to_string(w) + "x" + std::to_string(h) +
                             ", the model works on " + std::to_string(width) + "x" +
                             std::to_string(height),
                         "resize it, or pick a model of that shape");
    }
    unsigned char* pixels =
        stbi_load_from_memory(bytes.data(), len, &w, &h, &n, static_cast<int>(channels));
    if (!pixels) throw ImageFileError(png_failure(path), "");
    std::vector<uint8_t> tokens(pixels, pixels + static_cast<size_t>(w) * h * channels);
    stbi_image_free(pixels);
    return tokens;
}

}  // namespace krause
