// Several processes training one model: the launcher's environment (torchrun's variables), a
// c10d process group (NCCL on CUDA, Gloo on the CPU) and the few collectives the trainer needs.
// A single process gets a communicator whose collectives do nothing, so the trainer has one path.
#pragma once

#include <ATen/ATen.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace krause {

// What torchrun (or any launcher setting the same variables) tells a worker.
struct DistributedEnv {
    int rank = 0;
    int world_size = 1;
    int local_rank = 0;
    std::string master_addr = "127.0.0.1";
    int master_port = 29500;
    // Under torchrun >= 2.x the launcher already hosts the TCP store at MASTER_ADDR:MASTER_PORT
    // (TORCHELASTIC_USE_AGENT_STORE=True); every worker then connects as a client.
    bool agent_store = false;
    int restart_count = 0;
    // How long a rank waits for the others (rendezvous, collectives) before it gives up with an
    // error: KRAUSE_DIST_TIMEOUT seconds, 600 by default.
    std::chrono::milliseconds timeout{600000};

    bool launched() const { return world_size > 1; }
};

// Reads RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT, TORCHELASTIC_USE_AGENT_STORE,
// TORCHELASTIC_RESTART_COUNT and KRAUSE_DIST_TIMEOUT through `lookup` (nullopt = unset). No
// WORLD_SIZE, or 1, means one process. Throws std::invalid_argument naming the variable on
// malformed or inconsistent values (RANK >= WORLD_SIZE, a port out of range...).
DistributedEnv distributed_env_from(
    const std::function<std::optional<std::string>(const char*)>& lookup);
// The same from this process's environment.
DistributedEnv distributed_env();

// Whether this build can join a process group for tensors on `device` (Gloo for the CPU, NCCL
// for CUDA); Debian's CPU LibTorch has Gloo when libgloo-dev was present at build time.
bool distributed_supported(at::DeviceType device);

class Communicator {
public:
    virtual ~Communicator() = default;

    // One process: a communicator whose collectives return at once. Several: connects to the
    // store (rank 0 hosts it unless the launcher does), creates the process group for `device`
    // and checks that every rank reached it. Collectives that wait longer than env.timeout for
    // the other ranks throw (a failed rank never leaves the others hanging for good).
    static std::unique_ptr<Communicator> connect(const DistributedEnv& env, at::Device device);

    int rank() const { return rank_; }
    int world_size() const { return world_size_; }
    bool is_root() const { return rank_ == 0; }

    // In place over all ranks. With NCCL the host does not wait for the result: later work on
    // the current CUDA stream is ordered after it.
    virtual void all_reduce_sum(at::Tensor& tensor) = 0;
    virtual void all_reduce_max(at::Tensor& tensor) = 0;
    virtual void broadcast(at::Tensor& tensor, int root) = 0;

    // True on every rank when `flag` is true on any (a host sync; for rare decisions such as
    // stopping, so that all ranks leave the training loop at the same step).
    bool any(bool flag, at::Device device);

protected:
    Communicator(int rank, int world_size) : rank_(rank), world_size_(world_size) {}

private:
    int rank_, world_size_;
};

// The [begin, end) slice of n items that `rank` of `world_size` handles: contiguous, sizes
// differing by at most one, covering every item exactly once.
std::pair<int64_t, int64_t> shard_range(int64_t n, int rank, int world_size);

}  // namespace krause
