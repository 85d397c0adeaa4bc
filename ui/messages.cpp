// The engine phrases its advice for the command line, which it shares with the CLI; the studio
// maps it here, once, at the point where errors are drawn.
#include "ui/messages.h"

#include "training/options.h"

#include <regex>
#include <string>
#include <utility>
#include <vector>

namespace krause::ui {

namespace {

struct Rewrite {
    std::regex pattern;
    std::string replacement;
};

const std::vector<Rewrite>& rewrites() {
    static const std::vector<Rewrite> table = [] {
        std::vector<Rewrite> out;
        auto add = [&](const std::string& pattern, const std::string& replacement) {
            out.push_back({std::regex(pattern), replacement});
        };
        add(R"(run `krause data fetch [^`]*`)",
            "download it (the Download button beside the data folder)");
        add(R"(pass --data [A-Za-z0-9-]+:DIR)", "choose its folder in the data folder field");
        add(R"(--data [A-Za-z0-9-]+:DIR)", "the data folder field");
        add(R"(krause [a-z]+ --help)", "the tabs of this window");
        add(R"(--checkpoint\b)", "Open on the Model tab");
        add(R"(--device (cpu|cuda|auto)\b)", "the $1 device");
        // A training option becomes the label of its field on the Train tab (the option table).
        for (const OptionSpec& o : train_options()) {
            add("--" + std::string(o.flag) + "(?![a-z0-9-])",
                "the \"" + std::string(o.label) + "\" field");
        }
        // Any other option becomes its name as a setting.
        add(R"(--([a-z][a-z0-9]*)-([a-z0-9-]+))", "the $1 $2 setting");
        add(R"(--([a-z][a-z0-9]*))", "the $1 setting");
        return out;
    }();
    return table;
}

}  // namespace

std::string for_studio(const std::string& message) {
    if (message.find("--") == std::string::npos && message.find("krause ") == std::string::npos) {
        return message;
    }
    // Errors stay on screen and are drawn every frame; the last one is remembered.
    static std::string last_in, last_out;
    if (message == last_in) return last_out;
    std::string out = message;
    for (const Rewrite& r : rewrites()) out = std::regex_replace(out, r.pattern, r.replacement);
    last_in = message;
    last_out = out;
    return out;
}

}  // namespace krause::ui
