// Seeded per-epoch permutations and batch slicing of the training stream.
#include "training/data_order.h"

#include <stdexcept>

namespace krause {
namespace {

uint64_t splitmix64(uint64_t& state) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

}  // namespace

DataOrder::DataOrder(int64_t n, uint64_t seed, int64_t shard, int64_t shards)
    : n_(n), seed_(seed), shard_(shard), shards_(shards) {
    if (n < 1) throw std::invalid_argument("training data set is empty");
    if (shards < 1 || shard < 0 || shard >= shards) throw std::invalid_argument("bad shard");
}

std::vector<int64_t> DataOrder::permutation(int64_t n, uint64_t seed, int64_t epoch) {
    std::vector<int64_t> p(n);
    for (int64_t i = 0; i < n; ++i) p[i] = i;
    uint64_t state = seed * 0x2545f4914f6cdd1dULL + static_cast<uint64_t>(epoch) + 1;
    for (int64_t i = n - 1; i > 0; --i) {
        // Multiply-shift maps 64 random bits to [0, i] without modulo bias worth noticing.
        const auto r = static_cast<unsigned __int128>(splitmix64(state)) * (i + 1);
        std::swap(p[i], p[static_cast<int64_t>(r >> 64)]);
    }
    return p;
}

std::vector<int64_t> DataOrder::batch(int64_t step, int64_t batch) {
    std::vector<int64_t> out(batch);
    const int64_t first = (step * shards_ + shard_) * batch;
    for (int64_t b = 0; b < batch; ++b) {
        const int64_t pos = first + b;
        const int64_t epoch = pos / n_;
        if (epoch != cached_epoch_) {
            cached_ = permutation(n_, seed_, epoch);
            cached_epoch_ = epoch;
        }
        out[b] = cached_[pos % n_];
    }
    return out;
}

}  // namespace krause
