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

// "mnist", "mnist:/path/dir", "cifar10:/path". Without a dir, the first folder of the search order
// that has the files (find_data_dir in data/data_dirs.h, which implements this). Throws
// std::invalid_argument for a malformed spec, DataError listing where it looked when no folder
// has the data.
DatasetSpec parse_dataset_spec(const std::string& text);

// The kind's folder name inside a data folder: "mnist", "fashion-mnist", "cifar-10".
std::string default_subdir(DatasetKind kind);

// Whether dir holds the files of both splits of kind under one of the names the loader accepts
// (plain or .gz; CIFAR-10 also in a cifar-10-batches-bin subfolder). Their content is not read.
bool dataset_files_present(DatasetKind kind, const std::string& dir);

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

// The images in a split's official files: 60,000 (MNIST, Fashion-MNIST) or 50,000 (CIFAR-10) for
// training, 10,000 for testing.
int64_t official_size(DatasetKind kind, Split split);

// One line on what a training run loaded, e.g. "cifar10 from /data/cifar-10: 8,068 training
// images (of 50,000 in the official files) and 500 test images". A split's official count is
// named when the folder held fewer images than were asked for (the limits, 0 = all).
std::string describe_loaded(const DatasetSpec& spec, int64_t n_train, int64_t n_test,
                            int64_t train_limit, int64_t test_limit);

// limit: load at most this many images (0 = all). Headers, sizes and labels are still validated in
// full.
Dataset load_dataset(const DatasetSpec& spec, Split split, int64_t limit = 0);

}  // namespace krause
