// Image datasets (MNIST, Fashion-MNIST, CIFAR-10) loaded from their official files into model token
// order. Every failure throws DataError (see gzip_file.h) whose message names the file and what is
// wrong.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/gzip_file.h"

namespace krause {

enum class DatasetKind { Mnist, FashionMnist, Cifar10 };
enum class Split { Train, Test };

std::string to_string(DatasetKind kind);
std::string to_string(Split split);
// Accepts "mnist", "fashion-mnist" (or "fashion_mnist"), "cifar10" (or "cifar-10"), any case.
// Throws std::invalid_argument listing the accepted names.
DatasetKind parse_dataset_kind(const std::string& name);

struct DatasetSpec {
    DatasetKind kind = DatasetKind::Mnist;
    std::string dir;
};

// "mnist", "mnist:/path/dir", "cifar10:/path". Without a dir: $KRAUSE_DATA_DIR/mnist (or /cifar-10,
// /fashion-mnist); Fashion-MNIST also falls back to /usr/share/datasets/fashion-mnist when it
// exists. Throws std::invalid_argument with a hint when no dir can be found.
DatasetSpec parse_dataset_spec(const std::string& text);

// The folder name under $KRAUSE_DATA_DIR: "mnist", "fashion-mnist", "cifar-10".
std::string default_subdir(DatasetKind kind);

struct Dataset {
    DatasetKind kind = DatasetKind::Mnist;
    Split split = Split::Train;
    int64_t height = 0;
    int64_t width = 0;
    int64_t channels = 0;
    // size() * seq_len() bytes; image i in token order: index = (row * width + col) * channels +
    // channel.
    std::vector<uint8_t> tokens;
    std::vector<uint8_t> labels;  // 0..9

    int64_t size() const { return static_cast<int64_t>(labels.size()); }
    int64_t seq_len() const { return height * width * channels; }
    const uint8_t* image(int64_t i) const { return tokens.data() + i * seq_len(); }
};

// limit: load at most this many images (0 = all). Headers, sizes and labels are still validated in
// full.
Dataset load_dataset(const DatasetSpec& spec, Split split, int64_t limit = 0);

}  // namespace krause
