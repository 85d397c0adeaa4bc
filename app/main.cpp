// krause: the command-line front end (train, evaluate, sample, complete, inspect, bench).
#include "app/commands.h"

#include <c10/util/Exception.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>

namespace krause::cli {
void add_dynamics_command(CLI::App& app);  // app/commands_dynamics.cpp
}

namespace {

// "krause" alone, or "krause[rank 2]" in one of several processes started by torchrun, so a
// failing rank is named in the merged output.
std::string who() {
    const char* world = std::getenv("WORLD_SIZE");
    const char* rank = std::getenv("RANK");
    if (!world || !rank || std::string(world) == "1") return "krause";
    return std::string("krause[rank ") + rank + "]";
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Krause Studio: pixel-autoregressive Transformers with Krause attention"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "krause 0.1.0");
    krause::cli::add_model_commands(app);
    krause::cli::add_train_commands(app);
    krause::cli::add_data_commands(app);
    krause::cli::add_bench_command(app);
    krause::cli::add_dynamics_command(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const krause::cli::UsageError& e) {
        std::fprintf(stderr, "%s: error: %s\n", who().c_str(), e.what());
        if (!e.hint.empty()) std::fprintf(stderr, "hint: %s\n", e.hint.c_str());
        return 2;
    } catch (const std::filesystem::filesystem_error& e) {
        // The library's own text repeats the operation's internals; one line with the path is
        // what a user can act on.
        const std::string where = e.path1().empty() ? "" : e.path1().string() + ": ";
        std::fprintf(stderr, "%s: error: %s%s\n", who().c_str(), where.c_str(),
                     e.code().message().c_str());
        return 1;
    } catch (const c10::Error& e) {
        std::fprintf(stderr, "%s: error: %s\n", who().c_str(), e.what_without_backtrace());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: error: %s\n", who().c_str(), e.what());
        return 1;
    }
    return 0;
}
