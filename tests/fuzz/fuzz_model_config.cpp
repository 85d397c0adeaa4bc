// Fuzzes ModelConfig::from_json (model/config.h): any input either parses into a valid config
// that survives a JSON round trip, or throws std::invalid_argument.
#include "fuzz_util.h"
#include "model/config.h"

#include <stdexcept>

using namespace krause;
using namespace krause::fuzz;

namespace {

std::vector<std::pair<std::string, Bytes>> seeds() {
    std::vector<std::pair<std::string, Bytes>> out;
    for (const auto& name : preset_names()) {
        out.emplace_back("preset-" + name, text(preset(name).to_json()));
    }
    out.emplace_back("softmax", text(preset("mnist-tiny", AttentionKind::Softmax).to_json()));
    out.emplace_back("not-object", text("[1, 2, 3]"));
    out.emplace_back("missing", text(R"({"image_height": 28})"));
    out.emplace_back(
        "huge",
        text(R"({"image_height":4096,"image_width":4096,"image_channels":3,"d_model":16384,)"
             R"("n_heads":1,"n_layers":256,"attention":"linear","window":1e400,)"
             R"("top_k":-1,"init_sigma":1e308,"dropout":0.99})"));
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    maybe_write_seeds(seeds);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string input(reinterpret_cast<const char*>(data), size);
    try {
        const ModelConfig c = ModelConfig::from_json(input);
        c.validate();
        const ModelConfig again = ModelConfig::from_json(c.to_json());
        if (again != c) {
            std::fprintf(stderr, "round trip changed the config: %s -> %s\n", c.to_json().c_str(),
                         again.to_json().c_str());
            std::abort();
        }
    } catch (const std::invalid_argument&) {
    } catch (const std::exception& e) {
        unexpected("std::exception", &e);
    }
    return 0;
}
