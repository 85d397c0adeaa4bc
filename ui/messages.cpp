// The engine phrases its advice for the command line, which it shares with the CLI; the studio
// maps it here, once, at the point where errors are drawn.
#include "ui/messages.h"

#include <regex>
#include <utility>
#include <vector>

namespace krause::ui {

namespace {

struct Rewrite {
    std::regex pattern;
    const char* replacement;
};

const std::vector<Rewrite>& rewrites() {
    static const std::vector<Rewrite> table = [] {
        const std::pair<const char*, const char*> rules[] = {
            {R"(run `krause data fetch [^`]*`)",
             "download it (the Download button beside the data folder)"},
            {R"(pass --data [A-Za-z0-9-]+:DIR)", "choose its folder in the data folder field"},
            {R"(--data [A-Za-z0-9-]+:DIR)", "the data folder field"},
            {R"(krause [a-z]+ --help)", "the tabs of this window"},
            {R"(--checkpoint\b)", "Open on the Model tab"},
            {R"(--out\b)", "the output folder field"},
            {R"(--resume\b)", "the resume-from field"},
            {R"(--preset\b)", "the preset"},
            {R"(--batch\b)", "the batch size"},
            {R"(--device (cpu|cuda|auto)\b)", "the $1 device"},
            {R"(--threads\b)", "the threads field"},
            {R"(--data\b)", "the data set"},
            // Any other option becomes its name as a setting.
            {R"(--([a-z][a-z0-9]*)-([a-z0-9-]+))", "the $1 $2 setting"},
            {R"(--([a-z][a-z0-9]*))", "the $1 setting"},
        };
        std::vector<Rewrite> out;
        for (const auto& [pattern, replacement] : rules) {
            out.push_back({std::regex(pattern), replacement});
        }
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
