// krause: the command-line front end (train, evaluate, sample, complete, inspect, bench).
#include "app/commands.h"

#include <c10/util/Exception.h>

#include <cstdio>
#include <exception>

int main(int argc, char** argv) {
    CLI::App app{"Krause Studio: pixel-autoregressive Transformers with Krause attention"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "krause 0.1.0");
    krause::cli::add_model_commands(app);
    krause::cli::add_train_commands(app);
    krause::cli::add_bench_command(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const krause::cli::UsageError& e) {
        std::fprintf(stderr, "krause: error: %s\n", e.what());
        if (!e.hint.empty()) std::fprintf(stderr, "hint: %s\n", e.hint.c_str());
        return 2;
    } catch (const c10::Error& e) {
        std::fprintf(stderr, "krause: error: %s\n", e.what_without_backtrace());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "krause: error: %s\n", e.what());
        return 1;
    }
    return 0;
}
