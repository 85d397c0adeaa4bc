// Command-line flags made from the option table (training/options.h): `krause train` takes every
// option as --FLAG, `krause init` the options that shape a model.
#pragma once

#include "training/options.h"

#include <CLI/CLI.hpp>

#include <map>
#include <set>
#include <string>

namespace krause::cli {

class OptionFlags {
public:
    // Adds a flag for each option (only those that shape a model when `model_only`), showing the
    // defaults of `defaults` in --help.
    void add_to(CLI::App& command, const TrainConfig& defaults, bool model_only);
    // Parses the flags given into `config` (throws UsageError naming the flag and the value) and
    // returns the JSON names of the options given.
    std::set<std::string> apply(TrainConfig& config) const;

private:
    CLI::App* command_ = nullptr;
    std::map<std::string, std::string> text_;  // option name -> the text given
};

}  // namespace krause::cli
