// Fuzzes TrainConfig::from_json (training/train_config.h): any input either parses into a valid
// config whose JSON form is a fixed point, or throws std::invalid_argument.
#include "fuzz_util.h"
#include "training/train_config.h"

#include <cmath>
#include <stdexcept>

using namespace krause;
using namespace krause::fuzz;

namespace {

std::vector<std::pair<std::string, Bytes>> seeds() {
    TrainConfig tiny;
    tiny.preset = "mnist-tiny";
    tiny.data = "mnist:/tmp/data";
    tiny.steps = 5;
    tiny.epochs = 0.5;
    return {
        {"default", text(TrainConfig().to_json())},
        {"tiny", text(tiny.to_json())},
        {"empty-object", text("{}")},
        {"wrong-types", text(R"({"batch_size":"16","lr":true,"device":3})")},
        {"out-of-range", text(R"({"batch_size":1e300,"threads":-1e300,"seed":-1,"steps":1.5})")},
        {"bad-device", text(R"({"device":"tpu"})")},
    };
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    maybe_write_seeds(seeds);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string input(reinterpret_cast<const char*>(data), size);
    try {
        const TrainConfig c = TrainConfig::from_json(input);
        c.validate();
        // A validated config must be runnable: the trainer turns epochs into steps over at most
        // 10^6 images (the loaders' cap), and UBSan checks that conversion here.
        if (c.epochs > 0) {
            volatile int64_t total = static_cast<int64_t>(std::ceil(c.epochs * 1e6 / c.batch_size));
            (void)total;
        }
        const std::string json = c.to_json();
        const std::string again = TrainConfig::from_json(json).to_json();
        if (again != json) {
            std::fprintf(stderr, "round trip changed the config: %s -> %s\n", json.c_str(),
                         again.c_str());
            std::abort();
        }
    } catch (const std::invalid_argument&) {
    } catch (const std::exception& e) {
        unexpected("std::exception", &e);
    }
    return 0;
}
