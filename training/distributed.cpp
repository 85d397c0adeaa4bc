// The launcher's environment, c10d process groups and the collectives of data-parallel training.
#include "training/distributed.h"

#if defined(KRAUSE_WITH_GLOO) || defined(KRAUSE_WITH_NCCL)
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
#ifdef KRAUSE_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef KRAUSE_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <c10/util/Exception.h>

#include <cstdlib>
#include <stdexcept>

namespace krause {
namespace {

int parse_int(const char* name, const std::string& text, int lo, int hi) {
    size_t used = 0;
    long value = 0;
    try {
        value = std::stol(text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used == 0 || used != text.size() || value < lo || value > hi) {
        throw std::invalid_argument(std::string(name) + "='" + text + "' is not an integer in [" +
                                    std::to_string(lo) + ", " + std::to_string(hi) + "]");
    }
    return static_cast<int>(value);
}

// The first line of an error, without LibTorch's backtrace.
std::string first_line(const std::exception& e) {
    const auto* c10 = dynamic_cast<const c10::Error*>(&e);
    std::string text = c10 ? c10->what_without_backtrace() : e.what();
    const auto nl = text.find('\n');
    return nl == std::string::npos ? text : text.substr(0, nl);
}

// The communicator of a lone process.
class LocalCommunicator final : public Communicator {
public:
    LocalCommunicator() : Communicator(0, 1) {}
    void all_reduce_sum(at::Tensor&) override {}
    void all_reduce_max(at::Tensor&) override {}
    void broadcast(at::Tensor&, int) override {}
};

#if defined(KRAUSE_WITH_GLOO) || defined(KRAUSE_WITH_NCCL)

// Collectives of a c10d process group (Gloo or NCCL: the same calls in LibTorch 1.13 and 2.x).
template <typename Group>
class GroupCommunicator final : public Communicator {
public:
    GroupCommunicator(c10::intrusive_ptr<Group> group, int rank, int world_size)
        : Communicator(rank, world_size), group_(std::move(group)) {}

    void all_reduce_sum(at::Tensor& tensor) override { reduce(tensor, c10d::ReduceOp::SUM); }
    void all_reduce_max(at::Tensor& tensor) override { reduce(tensor, c10d::ReduceOp::MAX); }
    void broadcast(at::Tensor& tensor, int root) override {
        std::vector<at::Tensor> tensors{tensor};
        c10d::BroadcastOptions options;
        options.rootRank = root;
        wait(group_->broadcast(tensors, options), "broadcast");
    }

private:
    void reduce(at::Tensor& tensor, c10d::ReduceOp::RedOpType op) {
        std::vector<at::Tensor> tensors{tensor};
        c10d::AllreduceOptions options;
        options.reduceOp = c10d::ReduceOp(op);
        wait(group_->allreduce(tensors, options), "all-reduce");
    }

    template <typename Work>
    void wait(const Work& work, const char* what) {
        try {
            work->wait();
        } catch (const std::exception& e) {
            throw std::runtime_error("rank " + std::to_string(rank()) + ": " + what +
                                     " failed (did another rank stop?): " + first_line(e));
        }
    }

    c10::intrusive_ptr<Group> group_;
};

c10::intrusive_ptr<c10d::Store> make_store(const DistributedEnv& env,
                                           std::chrono::milliseconds timeout) {
    c10d::TCPStoreOptions options;
    options.port = static_cast<std::uint16_t>(env.master_port);
    options.isServer = !env.agent_store && env.rank == 0;
    options.numWorkers = static_cast<std::size_t>(env.world_size);
    options.waitWorkers = !env.agent_store;
    options.timeout = timeout;
    c10::intrusive_ptr<c10d::Store> store;
    try {
        store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, options);
    } catch (const std::exception& e) {
        throw std::runtime_error("rank " + std::to_string(env.rank) + ": rendezvous at " +
                                 env.master_addr + ":" + std::to_string(env.master_port) +
                                 " failed (" + first_line(e) +
                                 "); check MASTER_ADDR/MASTER_PORT "
                                 "and that all " +
                                 std::to_string(env.world_size) + " ranks started");
    }
    // torchrun's own store is shared with the launcher: keep our keys apart, per restart.
    const std::string prefix =
        env.agent_store ? "/worker/attempt_" + std::to_string(env.restart_count) : "krause";
    return c10::make_intrusive<c10d::PrefixStore>(prefix, store);
}

#endif

}  // namespace

DistributedEnv distributed_env_from(
    const std::function<std::optional<std::string>(const char*)>& lookup) {
    DistributedEnv env;
    const auto world = lookup("WORLD_SIZE");
    if (!world) return env;
    env.world_size = parse_int("WORLD_SIZE", *world, 1, 1 << 20);
    if (env.world_size == 1) return env;
    const auto need = [&](const char* name) {
        const auto value = lookup(name);
        if (!value || value->empty()) {
            throw std::invalid_argument(std::string("WORLD_SIZE is ") + *world + " but " + name +
                                        " is not set (launch with torchrun, or set RANK, "
                                        "LOCAL_RANK, MASTER_ADDR and MASTER_PORT)");
        }
        return *value;
    };
    env.rank = parse_int("RANK", need("RANK"), 0, env.world_size - 1);
    const auto local = lookup("LOCAL_RANK");
    env.local_rank = local ? parse_int("LOCAL_RANK", *local, 0, env.world_size - 1) : env.rank;
    env.master_addr = need("MASTER_ADDR");
    env.master_port = parse_int("MASTER_PORT", need("MASTER_PORT"), 1, 65535);
    const auto agent = lookup("TORCHELASTIC_USE_AGENT_STORE");
    env.agent_store = agent && (*agent == "True" || *agent == "true" || *agent == "1");
    if (const auto t = lookup("KRAUSE_DIST_TIMEOUT")) {
        env.timeout = std::chrono::seconds(parse_int("KRAUSE_DIST_TIMEOUT", *t, 1, 86400));
    }
    const auto restarts = lookup("TORCHELASTIC_RESTART_COUNT");
    if (restarts)
        env.restart_count = parse_int("TORCHELASTIC_RESTART_COUNT", *restarts, 0, 1 << 20);
    return env;
}

DistributedEnv distributed_env() {
    return distributed_env_from([](const char* name) -> std::optional<std::string> {
        const char* v = std::getenv(name);
        if (!v) return std::nullopt;
        return std::string(v);
    });
}

bool distributed_supported(at::DeviceType device) {
#ifdef KRAUSE_WITH_GLOO
    if (device == at::kCPU) return true;
#endif
#ifdef KRAUSE_WITH_NCCL
    if (device == at::kCUDA) return true;
#endif
    (void)device;
    return false;
}

std::unique_ptr<Communicator> Communicator::connect(const DistributedEnv& env, at::Device device) {
    const auto timeout = env.timeout;
    if (!env.launched()) return std::make_unique<LocalCommunicator>();
    if (!distributed_supported(device.type())) {
        throw std::runtime_error(
            "launched as rank " + std::to_string(env.rank) + " of " +
            std::to_string(env.world_size) +
            " (WORLD_SIZE is set) but this build of krause has "
            "no distributed support for " +
            (device.is_cuda() ? "CUDA (NCCL)" : "the CPU (Gloo)") +
            "; run it as a single process, or rebuild against a LibTorch with c10d " +
            (device.is_cuda() ? "and NCCL" : "and libgloo-dev installed"));
    }
    std::unique_ptr<Communicator> comm;
#if defined(KRAUSE_WITH_GLOO) || defined(KRAUSE_WITH_NCCL)
    auto store = make_store(env, timeout);
    try {
#ifdef KRAUSE_WITH_NCCL
        if (device.is_cuda()) {
            auto options = c10d::ProcessGroupNCCL::Options::create();
            options->timeout = timeout;
            auto group = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, env.rank,
                                                                     env.world_size, options);
            comm = std::make_unique<GroupCommunicator<c10d::ProcessGroupNCCL>>(group, env.rank,
                                                                               env.world_size);
        }
#endif
#ifdef KRAUSE_WITH_GLOO
        if (!device.is_cuda()) {
            auto options = c10d::ProcessGroupGloo::Options::create(timeout);
            options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
            auto group = c10::make_intrusive<c10d::ProcessGroupGloo>(store, env.rank,
                                                                     env.world_size, options);
            comm = std::make_unique<GroupCommunicator<c10d::ProcessGroupGloo>>(group, env.rank,
                                                                               env.world_size);
        }
#endif
    } catch (const std::exception& e) {
        throw std::runtime_error("rank " + std::to_string(env.rank) + ": joining the " +
                                 std::to_string(env.world_size) + " ranks failed (" +
                                 first_line(e) + "); did every rank start, and does none fail?");
    }
#endif
    // Every rank has joined once a first collective completes; NCCL also sets up its
    // communicator here rather than in the middle of the first training step.
    auto probe = at::ones({1}, at::TensorOptions().dtype(at::kFloat).device(device));
    comm->all_reduce_sum(probe);
    const double joined = probe.item<double>();
    if (joined != env.world_size) {
        throw std::runtime_error("rank " + std::to_string(env.rank) + ": " +
                                 std::to_string(static_cast<int>(joined)) + " of " +
                                 std::to_string(env.world_size) + " ranks joined the group");
    }
    return comm;
}

bool Communicator::any(bool flag, at::Device device) {
    if (world_size_ == 1) return flag;
    auto t =
        at::full({1}, flag ? 1.0f : 0.0f, at::TensorOptions().dtype(at::kFloat).device(device));
    all_reduce_max(t);
    return t.item<float>() > 0.5f;
}

std::pair<int64_t, int64_t> shard_range(int64_t n, int rank, int world_size) {
    if (world_size < 1 || rank < 0 || rank >= world_size || n < 0) {
        throw std::invalid_argument("shard_range: bad rank " + std::to_string(rank) + " of " +
                                    std::to_string(world_size));
    }
    const int64_t base = n / world_size, extra = n % world_size;
    const int64_t begin = rank * base + std::min<int64_t>(rank, extra);
    return {begin, begin + base + (rank < extra ? 1 : 0)};
}

}  // namespace krause
