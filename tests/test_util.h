// Small helpers shared by the test suites: tiny configs, tensor comparisons, temp folders and a
// fake MNIST.
#pragma once

#include "model/attention.h"
#include "model/config.h"

#include <ATen/ATen.h>
#include <torch/version.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <iterator>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace krause::test {

inline ModelConfig tiny_config(AttentionKind kind, int64_t h = 6, int64_t w = 6, int64_t c = 1) {
    ModelConfig m;
    m.image_height = h;
    m.image_width = w;
    m.image_channels = c;
    m.d_model = 32;
    m.n_heads = 4;
    m.n_layers = 2;
    m.attention = kind;
    m.window = 8;
    m.top_k = 5;
    m.dropout = 0.0;
    return m;
}

// The shape of a Krause attention test case: batch, heads, sequence, head size, window, top-K.
struct KrauseShape {
    int64_t B, H, T, D, W, K;
};

inline std::ostream& operator<<(std::ostream& os, const KrauseShape& s) {
    return os << "B" << s.B << " H" << s.H << " T" << s.T << " D" << s.D << " W" << s.W << " K"
              << s.K;
}

// A new seed for each draw of random inputs, or the one in KRAUSE_TEST_SEED, to replay a
// failure that a test reported with its seed.
inline uint64_t fresh_seed() {
    if (const char* fixed = std::getenv("KRAUSE_TEST_SEED"); fixed != nullptr && *fixed != 0) {
        char* end = nullptr;
        const uint64_t seed = std::strtoull(fixed, &end, 10);
        if (*end != 0) {
            throw std::invalid_argument(std::string("KRAUSE_TEST_SEED is not a number: ") + fixed);
        }
        return seed;
    }
    return std::random_device{}();
}

// PyTorch's own float8 type (LibTorch 2.1 and newer) encodes the references of fp8 ring buffers.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
#define KRAUSE_TEST_HAS_FP8 1
// x as fp8 e4m3 bytes (kByte), the layout of the decode kernel's fp8 ring buffers.
inline at::Tensor fp8_bytes(const at::Tensor& x) {
    return x.to(at::kFloat8_e4m3fn).view(at::kByte);
}
// The values x takes once stored in an fp8 ring, as fp32.
inline at::Tensor fp8_rounded(const at::Tensor& x) {
    return x.to(at::kFloat8_e4m3fn).to(at::kFloat);
}
#endif

// Every choice of warps per query of the Krause decode kernel (KernelOptions::decode_warps).
constexpr int kDecodeWarpChoices[] = {0, 1, 2, 4, 8};

inline double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
    return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

// The real data folder (holding mnist/ and cifar-10/), or "" when KRAUSE_DATA_DIR is unset.
inline std::string data_dir() {
    const char* dir = std::getenv("KRAUSE_DATA_DIR");
    return dir ? std::string(dir) : std::string();
}

// A whole file's bytes ("" when it cannot be read).
inline std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// A fresh, empty folder under the system temp directory, removed with everything in it when the
// object goes. mkdtemp names it, so test processes running side by side never share one.
class TempDir {
public:
    explicit TempDir(const std::string& name = "test") {
        std::string templ =
            (std::filesystem::temp_directory_path() / ("krause-" + name + "-XXXXXX")).string();
        if (::mkdtemp(templ.data()) == nullptr) {
            throw std::runtime_error("cannot make a folder " + templ + ": " + std::strerror(errno));
        }
        path_ = templ;
    }
    TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)), keep_(other.keep_) {
        other.path_.clear();
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    TempDir& operator=(TempDir&&) = delete;
    ~TempDir() {
        if (path_.empty() || keep_) return;
        // A test may have taken the write permission away to provoke errors.
        std::error_code ec;
        std::filesystem::permissions(path_, std::filesystem::perms::owner_all,
                                     std::filesystem::perm_options::add, ec);
        std::filesystem::remove_all(path_, ec);
    }

    const std::string& path() const { return path_; }
    std::string operator/(const std::string& name) const { return path_ + "/" + name; }
    // Leaves the folder in place, for a failed test's files to be looked at.
    void keep() { keep_ = true; }

private:
    std::string path_;
    bool keep_ = false;
};

// Writes an uncompressed MNIST-style IDX pair (28x28 images with a bright blob at a random
// place, labels 0..9) as <dir>/<prefix>-images-idx3-ubyte and -labels-idx1-ubyte.
inline void write_fake_mnist(const std::string& dir, const std::string& prefix, int n,
                             uint32_t seed) {
    std::mt19937 rng(seed);
    auto be32 = [](std::ofstream& out, uint32_t v) {
        const char b[4] = {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
        out.write(b, 4);
    };
    std::ofstream images(dir + "/" + prefix + "-images-idx3-ubyte", std::ios::binary);
    std::ofstream labels(dir + "/" + prefix + "-labels-idx1-ubyte", std::ios::binary);
    be32(images, 0x803);
    be32(images, n);
    be32(images, 28);
    be32(images, 28);
    be32(labels, 0x801);
    be32(labels, n);
    for (int i = 0; i < n; ++i) {
        std::vector<char> px(28 * 28, 0);
        const int cy = 6 + rng() % 16, cx = 6 + rng() % 16;
        for (int y = cy - 4; y <= cy + 4; ++y) {
            for (int x = cx - 4; x <= cx + 4; ++x) px[y * 28 + x] = char(255);
        }
        images.write(px.data(), px.size());
        labels.put(char(i % 10));
    }
}

// A folder with a small fake MNIST (train and t10k) for tests that must always run.
inline TempDir fake_mnist_dir(int n_train = 64, int n_test = 16) {
    TempDir dir("fake-mnist");
    write_fake_mnist(dir.path(), "train", n_train, 1);
    write_fake_mnist(dir.path(), "t10k", n_test, 2);
    return dir;
}

}  // namespace krause::test
