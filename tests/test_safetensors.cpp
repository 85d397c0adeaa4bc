// Tests for the safetensors reader and writer: exact round trips, rejection of damaged files with
// precise messages, a deterministic mutation fuzz loop, and atomic replacement on write failure.
#include "model/safetensors.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using krause::CheckpointError;
using krause::Metadata;
using krause::NamedTensors;
using krause::SafetensorsFile;

namespace {

std::string read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    ASSERT_TRUE(out.good()) << path;
}

std::string le_u64(uint64_t v) {
    std::string out(8, '\0');
    for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
    return out;
}

std::string make_file(const std::string& header, const std::string& data) {
    return le_u64(header.size()) + header + data;
}

// Bytes of a tensor in row-major order, for bit-exact comparison (NaN and -0.0 included).
std::string raw_bytes(const at::Tensor& t) {
    const at::Tensor c = t.contiguous();
    return std::string(static_cast<const char*>(c.data_ptr()),
                       static_cast<size_t>(c.numel() * c.element_size()));
}

void expect_same_tensor(const at::Tensor& expected, const at::Tensor& actual,
                        const std::string& name) {
    ASSERT_TRUE(actual.defined()) << name;
    EXPECT_EQ(actual.scalar_type(), expected.scalar_type()) << name;
    EXPECT_EQ(actual.sizes().vec(), expected.sizes().vec()) << name;
    EXPECT_TRUE(actual.device().is_cpu()) << name;
    EXPECT_TRUE(actual.is_contiguous()) << name;
    EXPECT_EQ(raw_bytes(actual), raw_bytes(expected)) << name;
}

at::Tensor random_tensor(at::ScalarType type, at::IntArrayRef shape) {
    switch (type) {
        case at::kDouble:
        case at::kFloat:
        case at::kBFloat16:
        case at::kHalf:
            return at::randn(shape, at::kDouble).mul(100).to(type);
        case at::kLong:
            return at::randint(-(int64_t{1} << 62), int64_t{1} << 62, shape, at::kLong);
        case at::kInt:
            return at::randint(-(int64_t{1} << 31), int64_t{1} << 31, shape, at::kLong).to(type);
        case at::kShort:
            return at::randint(-32768, 32768, shape, at::kLong).to(type);
        case at::kChar:
            return at::randint(-128, 128, shape, at::kLong).to(type);
        case at::kByte:
            return at::randint(0, 256, shape, at::kLong).to(type);
        case at::kBool:
            return at::randint(0, 2, shape, at::kLong).to(type);
        default:
            throw std::logic_error("unexpected dtype in test");
    }
}

std::vector<std::string> files_in(const std::string& dir) {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir))
        names.push_back(entry.path().filename().string());
    return names;
}

bool has_temp_file(const std::string& dir) {
    for (const std::string& name : files_in(dir)) {
        if (name.find(".tmp.") != std::string::npos) return true;
    }
    return false;
}

const std::string kValidHeader = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
const std::string kEightBytes(8, '\x01');

class Safetensors : public ::testing::Test {
protected:
    std::string path(const std::string& name) const { return dir_ + "/" + name; }

    // Writes `bytes` to a file named `file_name` and checks that both the file reader and the
    // buffer parser reject it with a message that starts with the name and contains `phrase`.
    void expect_rejected(const std::string& file_name, const std::string& bytes,
                         const std::string& phrase) {
        const std::string p = path(file_name);
        write_bytes(p, bytes);
        try {
            krause::read_safetensors(p);
            ADD_FAILURE() << file_name << ": accepted by read_safetensors, expected '" << phrase
                          << "'";
        } catch (const CheckpointError& e) {
            const std::string msg = e.what();
            EXPECT_EQ(msg.rfind(p + ": ", 0), 0u) << msg;
            EXPECT_NE(msg.find(phrase), std::string::npos)
                << "message: " << msg << "\nexpected: " << phrase;
        } catch (...) {
            ADD_FAILURE() << file_name
                          << ": read_safetensors threw something other than CheckpointError";
        }
        try {
            krause::parse_safetensors(file_name, reinterpret_cast<const uint8_t*>(bytes.data()),
                                      bytes.size());
            ADD_FAILURE() << file_name << ": accepted by parse_safetensors, expected '" << phrase
                          << "'";
        } catch (const CheckpointError& e) {
            const std::string msg = e.what();
            EXPECT_EQ(msg.rfind(file_name + ": ", 0), 0u) << msg;
            EXPECT_NE(msg.find(phrase), std::string::npos)
                << "message: " << msg << "\nexpected: " << phrase;
        } catch (...) {
            ADD_FAILURE() << file_name
                          << ": parse_safetensors threw something other than CheckpointError";
        }
    }

    const krause::test::TempDir tmp_{"safetensors"};
    const std::string dir_ = tmp_.path();
};

// Round trips

TEST_F(Safetensors, RoundTripEveryDtypeExactly) {
    at::manual_seed(1234);
    NamedTensors tensors;
    for (at::ScalarType type : {at::kDouble, at::kFloat, at::kBFloat16, at::kHalf, at::kLong,
                                at::kInt, at::kShort, at::kChar, at::kByte, at::kBool}) {
        const std::string tag = c10::toString(type);
        tensors.emplace_back("matrix." + tag, random_tensor(type, {3, 5}));
        tensors.emplace_back("scalar." + tag, random_tensor(type, {}));
        tensors.emplace_back("empty." + tag, random_tensor(type, {4, 0, 2}));
        tensors.emplace_back("strided." + tag, random_tensor(type, {6, 4}).t().slice(1, 0, 6, 2));
    }
    at::Tensor special = at::randn({6}, at::kDouble);
    special[0] = std::numeric_limits<double>::quiet_NaN();
    special[1] = -0.0;
    special[2] = -std::numeric_limits<double>::infinity();
    special[3] = std::numeric_limits<double>::denorm_min();
    tensors.emplace_back("special", special);
    tensors.emplace_back("special.f32", special.to(at::kFloat));
    ASSERT_FALSE(tensors[3].second.is_contiguous());
    ASSERT_EQ(tensors[1].second.dim(), 0);

    const std::string p = path("all.safetensors");
    krause::write_safetensors(p, tensors, {});
    const SafetensorsFile loaded = krause::read_safetensors(p);
    ASSERT_EQ(loaded.tensors.size(), tensors.size());
    for (size_t i = 0; i < tensors.size(); ++i) {
        EXPECT_EQ(loaded.tensors[i].first, tensors[i].first);
        expect_same_tensor(tensors[i].second, loaded.tensors[i].second, tensors[i].first);
    }
    EXPECT_EQ(loaded.tensors[1].second.dim(), 0);
    EXPECT_TRUE(loaded.metadata.empty());

    const std::string bytes = read_bytes(p);
    const SafetensorsFile parsed = krause::parse_safetensors(
        "all", reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    ASSERT_EQ(parsed.tensors.size(), tensors.size());
    for (size_t i = 0; i < tensors.size(); ++i) {
        expect_same_tensor(tensors[i].second, parsed.tensors[i].second, tensors[i].first);
    }
}

TEST_F(Safetensors, LoadedTensorsOwnTheirMemory) {
    const std::string bytes =
        make_file(kValidHeader, std::string("\x00\x00\x80\x3f\x00\x00\x00\x40", 8));
    SafetensorsFile loaded;
    {
        std::vector<uint8_t> buffer(bytes.begin(), bytes.end());
        loaded = krause::parse_safetensors("own", buffer.data(), buffer.size());
        std::fill(buffer.begin(), buffer.end(), 0xff);
    }
    ASSERT_EQ(loaded.tensors.size(), 1u);
    EXPECT_FLOAT_EQ(loaded.tensors[0].second[0].item<float>(), 1.0f);
    EXPECT_FLOAT_EQ(loaded.tensors[0].second[1].item<float>(), 2.0f);
}

TEST_F(Safetensors, MetadataRoundTrip) {
    const Metadata metadata = {
        {"format", "pt"},
        {"config", R"({"d_model": 256, "attention": "krause"})"},
        {"unicode", "Krause \xC3\xBC \xE2\x9C\x93"},
        {"escapes", "quote\" backslash\\ newline\n tab\t"},
        {"empty", ""},
    };
    const std::string p = path("meta.safetensors");
    krause::write_safetensors(p, {{"w", at::ones({2, 2})}}, metadata);
    const SafetensorsFile loaded = krause::read_safetensors(p);
    EXPECT_EQ(loaded.metadata, metadata);
    ASSERT_EQ(loaded.tensors.size(), 1u);
}

TEST_F(Safetensors, OrderIsPreserved) {
    const std::vector<std::string> names = {"z.weight",    "a.bias",     "m",
                                            "blocks.10.w", "blocks.2.w", "b"};
    NamedTensors tensors;
    for (size_t i = 0; i < names.size(); ++i) {
        tensors.emplace_back(names[i],
                             at::full({static_cast<int64_t>(i) + 1}, static_cast<double>(i)));
    }
    const std::string p = path("order.safetensors");
    krause::write_safetensors(p, tensors, {});
    const SafetensorsFile loaded = krause::read_safetensors(p);
    ASSERT_EQ(loaded.tensors.size(), names.size());
    for (size_t i = 0; i < names.size(); ++i) {
        EXPECT_EQ(loaded.tensors[i].first, names[i]);
        EXPECT_EQ(loaded.tensors[i].second.numel(), static_cast<int64_t>(i) + 1);
    }
}

TEST_F(Safetensors, ReaderReturnsOffsetOrderNotHeaderOrder) {
    const std::string header = R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[2,3]},)"
                               R"("b":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                               R"("c":{"dtype":"U8","shape":[0],"data_offsets":[3,3]}}    )";
    const std::string bytes = make_file(header, "xyz");
    const SafetensorsFile f = krause::parse_safetensors(
        "o", reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    ASSERT_EQ(f.tensors.size(), 3u);
    EXPECT_EQ(f.tensors[0].first, "b");
    EXPECT_EQ(f.tensors[1].first, "a");
    EXPECT_EQ(f.tensors[2].first, "c");
    EXPECT_EQ(f.tensors[1].second[0].item<uint8_t>(), 'z');
}

TEST_F(Safetensors, EmptyHeaderObjectIsAnEmptyFile) {
    const std::string bytes = make_file("{}      ", "");
    const SafetensorsFile f = krause::parse_safetensors(
        "e", reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    EXPECT_TRUE(f.tensors.empty());
    EXPECT_TRUE(f.metadata.empty());
}

TEST_F(Safetensors, WrittenHeaderIsAlignedJsonInOffsetOrder) {
    const std::string p = path("format.safetensors");
    krause::write_safetensors(
        p, {{"zeta", at::ones({3}, at::kHalf)}, {"alpha", at::zeros({2, 2}, at::kLong)}},
        {{"k", "v"}});
    const std::string bytes = read_bytes(p);
    ASSERT_GE(bytes.size(), 8u);
    uint64_t n = 0;
    std::memcpy(&n, bytes.data(), 8);
    EXPECT_EQ(n % 8, 0u);
    ASSERT_LE(n, bytes.size() - 8);
    const auto header = nlohmann::ordered_json::parse(bytes.substr(8, n));
    std::vector<std::string> keys;
    for (auto it = header.begin(); it != header.end(); ++it) keys.push_back(it.key());
    EXPECT_EQ(keys, (std::vector<std::string>{"__metadata__", "zeta", "alpha"}));
    EXPECT_EQ(header["zeta"]["dtype"], "F16");
    EXPECT_EQ(header["zeta"]["data_offsets"], nlohmann::ordered_json::parse("[0,6]"));
    EXPECT_EQ(header["alpha"]["dtype"], "I64");
    EXPECT_EQ(header["alpha"]["shape"], nlohmann::ordered_json::parse("[2,2]"));
    EXPECT_EQ(header["alpha"]["data_offsets"], nlohmann::ordered_json::parse("[6,38]"));
    EXPECT_EQ(bytes.size(), 8 + n + 38);
}

TEST_F(Safetensors, WriterRejectsBadNamesAndDtypes) {
    const std::string p = path("bad_names.safetensors");
    const at::Tensor t = at::ones({2});
    const std::vector<NamedTensors> bad = {
        {{"a", t}, {"a", t}},
        {{"", t}},
        {{"__metadata__", t}},
        {{"u", at::Tensor()}},
        {{"c", at::ones({2}, at::kComplexFloat)}},
    };
    for (const NamedTensors& tensors : bad) {
        try {
            krause::write_safetensors(p, tensors, {});
            ADD_FAILURE() << "accepted a bad tensor list starting with '" << tensors[0].first
                          << "'";
        } catch (const CheckpointError& e) {
            EXPECT_EQ(std::string(e.what()).rfind(p + ": ", 0), 0u) << e.what();
        }
    }
    EXPECT_FALSE(fs::exists(p));
    EXPECT_TRUE(files_in(dir_).empty());
}

// Rejections

TEST_F(Safetensors, RejectsEmptyFile) {
    expect_rejected("empty.safetensors", "", "file too small: 0 bytes");
}

TEST_F(Safetensors, RejectsFiveByteFile) {
    expect_rejected("five.safetensors", "\x01\x02\x03\x04\x05", "file too small: 5 bytes");
}

TEST_F(Safetensors, RejectsTruncatedData) {
    const std::string p = path("full.safetensors");
    krause::write_safetensors(p, {{"w", at::ones({4, 4})}}, {});
    const std::string bytes = read_bytes(p);
    expect_rejected("cut.safetensors", bytes.substr(0, bytes.size() - 3),
                    "truncated: header says 64 bytes of data, file has 61");
}

TEST_F(Safetensors, RejectsHeaderLongerThanFile) {
    expect_rejected("long_header.safetensors", le_u64(1000) + "{}",
                    "truncated: header length is 1000 bytes");
}

TEST_F(Safetensors, RejectsHugeHeaderLength) {
    expect_rejected("huge_header.safetensors",
                    le_u64(uint64_t{1} << 63) + kValidHeader + kEightBytes,
                    "header length of 9223372036854775808");
}

TEST_F(Safetensors, RejectsTextFileAsNotSafetensors) {
    const std::string text = "# notes\nThis is a plain text file, not a checkpoint.\n";
    expect_rejected("notes.safetensors", text, "not a safetensors checkpoint");
    // A real checkpoint cut inside its header is reported as truncated, not as another format.
    expect_rejected("cut_header.safetensors", le_u64(300) + "{\"a\":", "truncated");
}

TEST_F(Safetensors, RejectsGarbageBytes) {
    std::mt19937 rng(7);
    std::string garbage;
    for (int i = 0; i < 256; ++i) garbage.push_back(static_cast<char>(rng() & 0xff));
    garbage[7] = '\x80';  // keeps the length prefix implausible whatever the generator yields
    expect_rejected("garbage.safetensors", garbage, "header length");
    expect_rejected("garbage_header.safetensors", make_file(garbage.substr(8, 64), ""),
                    "header is not valid JSON");
}

TEST_F(Safetensors, RejectsHeaderThatIsNotJson) {
    expect_rejected("not_json.safetensors", make_file(R"({"a": {"dtype": "F32", )", ""),
                    "header is not valid JSON");
    expect_rejected("trailing.safetensors", make_file("{} x", ""), "header is not valid JSON");
    expect_rejected("bad_utf8.safetensors", make_file("{\"\xff\":1}", ""),
                    "header is not valid JSON");
    expect_rejected("nul.safetensors", make_file(std::string("{}\0\0", 4), ""),
                    "header is not valid JSON");
    expect_rejected("nul_hidden.safetensors",
                    make_file(std::string("{}\0", 3) +
                                  R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})",
                              "x"),
                    "header is not valid JSON");
}

TEST_F(Safetensors, RejectsHeaderThatIsAnArray) {
    expect_rejected("array.safetensors", make_file("[1, 2, 3]", ""), "header is not a JSON object");
    expect_rejected("string.safetensors", make_file("\"x\"", ""), "header is not a JSON object");
}

TEST_F(Safetensors, RejectsUnknownDtype) {
    expect_rejected(
        "dtype.safetensors",
        make_file(
            R"({"blocks.0.attn.q_proj.weight":{"dtype":"F99","shape":[2],"data_offsets":[0,8]}})",
            kEightBytes),
        "tensor 'blocks.0.attn.q_proj.weight': unknown dtype 'F99'");
    expect_rejected(
        "u32.safetensors",
        make_file(R"({"a":{"dtype":"U32","shape":[2],"data_offsets":[0,8]}})", kEightBytes),
        "tensor 'a': unsupported dtype 'U32'");
    expect_rejected("dtype_int.safetensors",
                    make_file(R"({"a":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", kEightBytes),
                    "tensor 'a': 'dtype' is not a string");
    expect_rejected("dtype_missing.safetensors",
                    make_file(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", kEightBytes),
                    "tensor 'a': missing 'dtype'");
}

TEST_F(Safetensors, RejectsBadShapes) {
    expect_rejected(
        "negative.safetensors",
        make_file(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", kEightBytes),
        "tensor 'a': negative shape entry -2");
    expect_rejected(
        "float_dim.safetensors",
        make_file(R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", kEightBytes),
        "tensor 'a': shape entry 2.0 is not an integer");
    expect_rejected(
        "shape_obj.safetensors",
        make_file(R"({"a":{"dtype":"F32","shape":{"n":2},"data_offsets":[0,8]}})", kEightBytes),
        "tensor 'a': 'shape' is not an array");
    // ATen would throw its own error computing strides for this; the reader must catch it first.
    expect_rejected(
        "overflow.safetensors",
        make_file(R"({"a":{"dtype":"F32","shape":[4611686018427387904,4611686018427387904,0],)"
                  R"("data_offsets":[0,0]}})",
                  ""),
        "tensor 'a': shape has too many elements");
    expect_rejected(
        "dim_u64.safetensors",
        make_file(R"({"a":{"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,8]}})",
                  kEightBytes),
        "tensor 'a': shape entry 18446744073709551615 is too large");
    expect_rejected(
        "bytes_overflow.safetensors",
        make_file(R"({"a":{"dtype":"F32","shape":[2147483648,2147483648],"data_offsets":[0,8]}})",
                  kEightBytes),
        "needs more than 2^64 bytes");
}

TEST_F(Safetensors, RejectsShapeOffsetSizeMismatch) {
    expect_rejected(
        "mismatch.safetensors",
        make_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", kEightBytes),
        "tensor 'a': size mismatch: shape [3] of F32 needs 12 bytes, data_offsets [0, 8] span 8");
}

TEST_F(Safetensors, RejectsOffsetsBeyondData) {
    expect_rejected("beyond.safetensors",
                    make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                              R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                              kEightBytes),
                    "header says 16 bytes of data, file has 8 (tensor 'b'");
    expect_rejected(
        "reversed.safetensors",
        make_file(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", kEightBytes),
        "tensor 'a': data_offsets [8, 0] begin after they end");
}

TEST_F(Safetensors, RejectsOverlappingOffsets) {
    expect_rejected("overlap.safetensors",
                    make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                              R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                              std::string(12, '\0')),
                    "tensor 'b' data_offsets [4, 12] overlap tensor 'a' [0, 8]");
    expect_rejected("aliased.safetensors",
                    make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                              R"("b":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}})",
                              kEightBytes),
                    "overlap");
}

TEST_F(Safetensors, RejectsGapsInData) {
    expect_rejected("gap.safetensors",
                    make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                              R"("b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}})",
                              std::string(20, '\0')),
                    "gap in data: bytes [8, 12] belong to no tensor");
    expect_rejected(
        "leading_gap.safetensors",
        make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", kEightBytes),
        "gap in data: bytes [0, 4]");
    expect_rejected("trailing_gap.safetensors", make_file(kValidHeader, std::string(12, '\0')),
                    "gap in data: bytes [8, 12] after the last tensor");
}

TEST_F(Safetensors, RejectsBadMetadata) {
    expect_rejected(
        "meta_value.safetensors",
        make_file(R"({"__metadata__":{"ok":"x","epoch":3},)" + kValidHeader.substr(1), kEightBytes),
        "metadata value for 'epoch' is not a string");
    expect_rejected("meta_array.safetensors",
                    make_file(R"({"__metadata__":["x"],)" + kValidHeader.substr(1), kEightBytes),
                    "__metadata__ is not an object");
}

TEST_F(Safetensors, RejectsEntryThatIsNotAnObject) {
    expect_rejected("entry.safetensors", make_file(R"({"a":[0,8]})", kEightBytes),
                    "tensor 'a': entry is not an object");
    expect_rejected("entry_null.safetensors", make_file(R"({"a":null})", ""),
                    "tensor 'a': entry is not an object");
}

TEST_F(Safetensors, RejectsBadDataOffsets) {
    expect_rejected(
        "one_offset.safetensors",
        make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8]}})", kEightBytes),
        "tensor 'a': 'data_offsets' must be an array [begin, end]");
    expect_rejected(
        "three_offsets.safetensors",
        make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}})", kEightBytes),
        "tensor 'a': 'data_offsets' must be an array [begin, end]");
    expect_rejected(
        "offsets_obj.safetensors",
        make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":{"b":0,"e":8}}})", kEightBytes),
        "tensor 'a': 'data_offsets' must be an array [begin, end]");
    expect_rejected(
        "string_offsets.safetensors",
        make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":["0","8"]}})", kEightBytes),
        "tensor 'a': 'data_offsets' must hold two non-negative integers");
    expect_rejected(
        "float_offsets.safetensors",
        make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8.0]}})", kEightBytes),
        "tensor 'a': 'data_offsets' must hold two non-negative integers");
    expect_rejected(
        "negative_offsets.safetensors",
        make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", kEightBytes),
        "tensor 'a': 'data_offsets' must hold two non-negative integers");
    expect_rejected("missing_offsets.safetensors",
                    make_file(R"({"a":{"dtype":"F32","shape":[2]}})", kEightBytes),
                    "tensor 'a': missing 'data_offsets'");
}

TEST_F(Safetensors, RejectsDuplicateNamesEmptyNamesAndBadBools) {
    expect_rejected("dup.safetensors",
                    make_file(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                              R"("a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                              "xy"),
                    "duplicate key 'a'");
    expect_rejected("empty_name.safetensors",
                    make_file(R"({"":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})", "x"),
                    "tensor with an empty name");
    expect_rejected("bool.safetensors",
                    make_file(R"({"mask":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}})",
                              std::string("\x01\x00\x02", 3)),
                    "tensor 'mask': BOOL element 2 has byte value 2");
}

TEST_F(Safetensors, RejectsMissingFileAndDirectory) {
    const std::string missing = path("missing.safetensors");
    try {
        krause::read_safetensors(missing);
        ADD_FAILURE() << "read a missing file";
    } catch (const CheckpointError& e) {
        EXPECT_EQ(std::string(e.what()), missing + ": cannot open (No such file or directory)");
    }
    try {
        krause::read_safetensors(dir_);
        ADD_FAILURE() << "read a directory";
    } catch (const CheckpointError& e) {
        EXPECT_EQ(std::string(e.what()), dir_ + ": not a regular file");
    }
}

// Fuzzing

TEST_F(Safetensors, MutatedFilesEitherParseOrThrowCheckpointError) {
    at::manual_seed(99);
    const std::string p = path("seed.safetensors");
    krause::write_safetensors(p,
                              {{"embed.weight", at::randn({3, 4})},
                               {"mask", at::randint(0, 2, {5}, at::kLong).to(at::kBool)},
                               {"steps", at::arange(2, at::kLong)},
                               {"empty", at::empty({0, 3}, at::kBFloat16)},
                               {"scale", at::scalar_tensor(7, at::kByte)},
                               {"half", at::randn({2, 2}).to(at::kHalf)}},
                              {{"format", "pt"}, {"step", "12"}});
    const std::string seed = read_bytes(p);
    uint64_t header_len = 0;
    std::memcpy(&header_len, seed.data(), 8);
    const std::string json_chars = "{}[]\",:-.0123456789eE \\ux";

    std::mt19937_64 rng(20240531);
    auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
    int accepted = 0;
    int rejected = 0;
    for (int iter = 0; iter < 2000; ++iter) {
        std::string bytes = seed;
        const int rounds = 1 + static_cast<int>(pick(3));
        for (int r = 0; r < rounds && bytes.size() > 8; ++r) {
            const size_t header_span = std::min<size_t>(header_len, bytes.size() - 8);
            switch (pick(6)) {
                case 0:
                    bytes[pick(bytes.size())] ^= static_cast<char>(1u << pick(8));
                    break;
                case 1:
                    bytes[8 + pick(header_span)] = json_chars[pick(json_chars.size())];
                    break;
                case 2:
                    bytes.resize(pick(bytes.size() + 1));
                    break;
                case 3: {
                    const uint64_t len = pick(2) ? header_len + pick(33) - 16 : rng();
                    std::memcpy(&bytes[0], &len, 8);
                    break;
                }
                case 4: {
                    const size_t at = 8 + pick(header_span);
                    if (pick(2)) {
                        bytes.insert(bytes.begin() + static_cast<std::ptrdiff_t>(at),
                                     json_chars[pick(json_chars.size())]);
                    } else {
                        bytes.erase(at, 1);
                    }
                    break;
                }
                default: {
                    const size_t at = 8 + pick(header_span);
                    if (std::isdigit(static_cast<unsigned char>(bytes[at])))
                        bytes[at] = static_cast<char>('0' + pick(10));
                    break;
                }
            }
        }
        try {
            const SafetensorsFile f = krause::parse_safetensors(
                "fuzz", reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
            for (const auto& [name, t] : f.tensors) {
                ASSERT_TRUE(t.defined()) << name;
                ASSERT_TRUE(t.is_contiguous()) << name;
            }
            ++accepted;
        } catch (const CheckpointError& e) {
            ASSERT_EQ(std::string(e.what()).rfind("fuzz: ", 0), 0u) << e.what();
            ++rejected;
        } catch (const std::exception& e) {
            FAIL() << "iteration " << iter << ": non-CheckpointError exception: " << e.what();
        } catch (...) {
            FAIL() << "iteration " << iter << ": unknown exception";
        }
    }
    EXPECT_GT(accepted, 0);
    EXPECT_GT(rejected, 1000);
}

// Atomic writes

// Lowers the file-size limit so the next write fails part-way with EFBIG, like a full disk would.
class FileSizeLimit {
public:
    explicit FileSizeLimit(rlim_t bytes) {
        old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
        ::getrlimit(RLIMIT_FSIZE, &old_);
        rlimit lowered = old_;
        lowered.rlim_cur = bytes;
        ok_ = ::setrlimit(RLIMIT_FSIZE, &lowered) == 0;
    }
    ~FileSizeLimit() {
        ::setrlimit(RLIMIT_FSIZE, &old_);
        std::signal(SIGXFSZ, old_handler_);
    }
    bool ok() const { return ok_; }

private:
    rlimit old_{};
    void (*old_handler_)(int) = nullptr;
    bool ok_ = false;
};

TEST_F(Safetensors, SuccessfulOverwriteReplacesFileAndLeavesNoTemp) {
    const std::string p = path("model.safetensors");
    krause::write_safetensors(p, {{"w", at::zeros({8})}}, {{"v", "1"}});
    krause::write_safetensors(p, {{"w", at::ones({2})}}, {{"v", "2"}});
    const SafetensorsFile loaded = krause::read_safetensors(p);
    EXPECT_EQ(loaded.metadata.at("v"), "2");
    EXPECT_EQ(loaded.tensors.at(0).second.numel(), 2);
    EXPECT_EQ(files_in(dir_), std::vector<std::string>{"model.safetensors"});
}

TEST_F(Safetensors, FailedWriteLeavesOldFileAndNoTemp) {
    const std::string p = path("model.safetensors");
    krause::write_safetensors(p, {{"old", at::arange(16, at::kFloat)}}, {{"v", "old"}});
    const std::string before = read_bytes(p);
    std::string message;
    {
        FileSizeLimit limit(4096);
        ASSERT_TRUE(limit.ok());
        try {
            krause::write_safetensors(p, {{"new", at::ones({1 << 16})}}, {{"v", "new"}});
        } catch (const CheckpointError& e) {
            message = e.what();
        }
    }
    ASSERT_FALSE(message.empty()) << "write past the file-size limit succeeded";
    EXPECT_EQ(message.rfind(p + ": ", 0), 0u) << message;
    EXPECT_NE(message.find(std::strerror(EFBIG)), std::string::npos) << message;
    EXPECT_EQ(read_bytes(p), before);
    EXPECT_FALSE(has_temp_file(dir_));
}

TEST_F(Safetensors, FailedRenameRemovesTemp) {
    const std::string target = path("occupied");
    fs::create_directory(target);
    write_bytes(target + "/keep", "x");
    try {
        krause::write_safetensors(target, {{"w", at::ones({4})}}, {});
        ADD_FAILURE() << "renamed a file over a non-empty directory";
    } catch (const CheckpointError& e) {
        EXPECT_EQ(std::string(e.what()).rfind(target + ": ", 0), 0u) << e.what();
        EXPECT_NE(std::string(e.what()).find("cannot rename"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(fs::is_directory(target));
    EXPECT_EQ(read_bytes(target + "/keep"), "x");
    EXPECT_FALSE(has_temp_file(dir_));
}

TEST_F(Safetensors, WriteIntoMissingOrInvalidDirectoryThrows) {
    const std::string blocker = path("plain_file");
    write_bytes(blocker, "content");
    const std::string under_file = blocker + "/model.safetensors";
    try {
        krause::write_safetensors(under_file, {{"w", at::ones({4})}}, {});
        ADD_FAILURE() << "wrote under a regular file";
    } catch (const CheckpointError& e) {
        EXPECT_EQ(std::string(e.what()).rfind(under_file + ": ", 0), 0u) << e.what();
        EXPECT_NE(std::string(e.what()).find(std::strerror(ENOTDIR)), std::string::npos)
            << e.what();
    }
    const std::string missing = path("no_such_dir/model.safetensors");
    try {
        krause::write_safetensors(missing, {{"w", at::ones({4})}}, {});
        ADD_FAILURE() << "wrote into a missing directory";
    } catch (const CheckpointError& e) {
        EXPECT_EQ(std::string(e.what()).rfind(missing + ": ", 0), 0u) << e.what();
        EXPECT_NE(std::string(e.what()).find(std::strerror(ENOENT)), std::string::npos) << e.what();
    }
    EXPECT_EQ(read_bytes(blocker), "content");
    EXPECT_EQ(files_in(dir_), std::vector<std::string>{"plain_file"});
}

TEST_F(Safetensors, ReadOnlyDirectoryLeavesOldFile) {
    if (::geteuid() == 0) GTEST_SKIP() << "root ignores directory permissions";
    const std::string p = path("model.safetensors");
    krause::write_safetensors(p, {{"w", at::zeros({4})}}, {});
    const std::string before = read_bytes(p);
    ASSERT_EQ(::chmod(dir_.c_str(), 0555), 0);
    try {
        krause::write_safetensors(p, {{"w", at::ones({4})}}, {});
        ADD_FAILURE() << "wrote into a read-only directory";
    } catch (const CheckpointError& e) {
        EXPECT_NE(std::string(e.what()).find(std::strerror(EACCES)), std::string::npos) << e.what();
    }
    ::chmod(dir_.c_str(), 0755);
    EXPECT_EQ(read_bytes(p), before);
    EXPECT_FALSE(has_temp_file(dir_));
}

}  // namespace
