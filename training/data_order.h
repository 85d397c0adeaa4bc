// The order in which training images are visited: a seeded permutation per epoch, identical on
// every platform, so a resumed run sees exactly the batches an uninterrupted one would.
#pragma once

#include <cstdint>
#include <vector>

namespace krause {

class DataOrder {
public:
    // n images; `shard`/`shards` split each batch across processes (rank r of world w).
    DataOrder(int64_t n, uint64_t seed, int64_t shard = 0, int64_t shards = 1);

    // Indices of the images of global batch `step` (global size batch * shards) that belong to
    // this shard: positions step * batch * shards + shard * batch + [0, batch) of an endless
    // stream made of one permutation per epoch.
    std::vector<int64_t> batch(int64_t step, int64_t batch);

    // The permutation of epoch e (Fisher-Yates driven by splitmix64).
    static std::vector<int64_t> permutation(int64_t n, uint64_t seed, int64_t epoch);

private:
    int64_t n_;
    uint64_t seed_;
    int64_t shard_, shards_;
    int64_t cached_epoch_ = -1;
    std::vector<int64_t> cached_;
};

}  // namespace krause
