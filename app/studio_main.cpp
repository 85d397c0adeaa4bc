// krause-studio: the desktop GUI. Parses the command line and hands over to the studio window.
#include "ui/script.h"
#include "ui/studio_app.h"

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

void usage(std::FILE* out) {
    std::fprintf(out,
                 "usage: krause-studio [--checkpoint FILE] [--script FILE --screenshots DIR]\n"
                 "                     [--width W --height H]\n\n"
                 "  --checkpoint FILE  open this model (default: the bundled one, if any)\n"
                 "  --script FILE      play a script of UI actions, then exit (0: every step "
                 "worked)\n"
                 "  --screenshots DIR  where the script writes NN-step.png/.json and "
                 "frame_times.json\n"
                 "  --shots all|named  files for every step (default), or only for `screenshot`\n"
                 "                     steps and a failed one (long runs)\n"
                 "  --width, --height  window size (default 1400 x 900)\n\n%s",
                 krause::ui::script_help().c_str());
}

bool parse_size(const char* text, int* out) {
    char* end = nullptr;
    const long v = std::strtol(text, &end, 10);
    if (*end != '\0' || v < 200 || v > 16384) return false;
    *out = static_cast<int>(v);
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    krause::ui::StudioOptions options;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "-h" || arg == "--help") {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            std::fprintf(stderr, "krause-studio: %s needs a value (see --help)\n", arg.c_str());
            return 2;
        }
        const char* value = argv[++i];
        if (arg == "--checkpoint") {
            options.checkpoint = value;
        } else if (arg == "--script") {
            options.script = value;
        } else if (arg == "--screenshots") {
            options.screenshots = value;
        } else if (arg == "--shots") {
            const std::string shots = value;
            if (shots != "all" && shots != "named") {
                std::fprintf(stderr, "krause-studio: --shots expects all or named, got '%s'\n",
                             value);
                return 2;
            }
            options.named_shots_only = shots == "named";
        } else if (arg == "--width" || arg == "--height") {
            if (!parse_size(value, arg == "--width" ? &options.width : &options.height)) {
                std::fprintf(stderr, "krause-studio: %s expects 200..16384, got '%s'\n",
                             arg.c_str(), value);
                return 2;
            }
        } else {
            std::fprintf(stderr, "krause-studio: unknown option %s (see --help)\n", arg.c_str());
            return 2;
        }
    }
    if (!options.screenshots.empty() && options.script.empty()) {
        std::fprintf(stderr, "krause-studio: --screenshots needs --script\n");
        return 2;
    }
    return krause::ui::run_studio(options);
}
