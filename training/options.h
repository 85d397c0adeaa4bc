// The training options as one table: each option is declared once (name, field, range or
// choices, help), and the CLI flags, the studio's form and `set` verb, validation, the JSON form
// and the resume merge are all made from it. Torch-free, so the studio can include it.
#pragma once

#include "model/config.h"
#include "training/train_config.h"

#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

namespace krause {

// The one list of names of each enum-like option (help texts, validation, combos).
const std::vector<std::string>& preset_choices();        // model/config.h's presets
const std::vector<std::string>& attention_choices();     // krause, softmax, linear
const std::vector<std::string>& dataset_kind_choices();  // mnist, fashion-mnist, cifar10
const std::vector<std::string>& device_choices();        // auto, cpu, cuda
const std::vector<std::string>& precision_choices();     // bf16, fp32
// "a | b | c", for help texts.
std::string join_choices(const std::vector<std::string>& names, const char* separator = " | ");

// How the form groups the options.
enum class OptionGroup { Model, Data, Optimiser, Schedule, Run, Testing };
const char* to_string(OptionGroup group);

// What --resume does with an option: the run's own value (Stored: the model and the optimiser
// depend on it; a different value given explicitly is refused), the given value when one was
// given (Given), or always the given value, never the stored one (Fresh).
enum class OnResume { Stored, Given, Fresh };

using OptionField =
    std::variant<std::string TrainConfig::*, int64_t TrainConfig::*, int TrainConfig::*,
                 uint64_t TrainConfig::*, double TrainConfig::*,
                 std::optional<int64_t> TrainConfig::*, std::optional<double> TrainConfig::*>;

// A text option whose value is one of `choices`, or a KIND[:DIR] data set spec whose kind is.
enum class TextKind { Free, Choice, DataSpec };

struct OptionSpec {
    const char* name;   // key in the stored JSON config, e.g. "batch_size"
    const char* flag;   // CLI flag without the dashes, e.g. "batch"; the studio's `set` key is
                        // "train." + the flag with '_' for '-'
    const char* label;  // the studio form's label
    const char* help;   // one line for --help and tooltips
    OptionField field;
    OptionGroup group;
    OnResume on_resume;
    // Numbers: the accepted interval; an open end excludes it, an infinite end is no bound.
    double lo = 0, hi = 0;
    bool lo_open = false, hi_open = false;
    TextKind text = TextKind::Free;
    const std::vector<std::string>& (*choices)() = nullptr;
    bool model = false;  // shapes a new model: `krause init` takes it too

    bool is_optional() const;  // unset means the preset's value
    bool is_integer() const;
    bool is_real() const;
    std::string setting_key() const;  // "train.batch"
};

const std::vector<OptionSpec>& train_options();
// By JSON name or by CLI flag; null when there is no such option.
const OptionSpec* find_option(const std::string& name_or_flag);

// The value as text ("" for an unset optional), in a form set_option reads back exactly.
std::string option_text(const OptionSpec& option, const TrainConfig& config);
// Parses `text` into the option's field and checks it; "" unsets an optional option. Throws
// std::invalid_argument with the message validate() gives for the same value.
void set_option(const OptionSpec& option, TrainConfig& config, const std::string& text);
// "" when the option's value is acceptable on its own, else "--flag must be ..., got ...".
std::string check_option(const OptionSpec& option, const TrainConfig& config);
// "in [0, 1)", ">= 1", "one of a, b", for messages and help.
std::string option_range_text(const OptionSpec& option);
bool same_value(const OptionSpec& option, const TrainConfig& a, const TrainConfig& b);
void copy_value(const OptionSpec& option, const TrainConfig& from, TrainConfig& to);

// What an unset model option stands for: the preset's value (nothing when the preset or the
// attention name is unknown, or the option has no preset value).
std::optional<double> preset_value(const OptionSpec& option, const TrainConfig& config);

// The model a fresh run builds: the preset's shape with the attention kind, the model options
// that are set, and the dropouts. Throws std::invalid_argument naming bad values.
ModelConfig model_config(const TrainConfig& config);

// On resume: the options stored in config.resume's checkpoint, with those in `given_names`
// (JSON names) taken from `given` as each option's OnResume says. Throws std::invalid_argument
// naming the file when it is not a training checkpoint, or an option that cannot change.
TrainConfig resume_config(const TrainConfig& given, const std::set<std::string>& given_names);

}  // namespace krause
