// The krause subcommands, grouped by what they work on; each adds itself to the CLI11 app.
#pragma once

#include <CLI/CLI.hpp>

namespace krause::cli {

void add_model_commands(CLI::App& app);  // init, sample, complete, inspect
void add_train_commands(CLI::App& app);  // train, eval
void add_data_commands(CLI::App& app);   // data fetch, data where, data use
void add_bench_command(CLI::App& app);   // bench

// Thrown for a bad input the user can fix; main prints "krause: error: <what>" and the hint.
struct UsageError : std::runtime_error {
    UsageError(const std::string& what, std::string hint)
        : std::runtime_error(what), hint(std::move(hint)) {}
    std::string hint;
};

// For options whose absence means a default (the bundled model, the default data folder): an
// explicitly empty value is refused rather than taken as "not given".
inline CLI::Validator non_empty() {
    return CLI::Validator(
        [](std::string& value) { return value.empty() ? std::string("must not be empty") : ""; },
        "", "NON_EMPTY");
}

}  // namespace krause::cli
