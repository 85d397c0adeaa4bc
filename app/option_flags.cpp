// The table's options as CLI11 flags. Values are taken as text and parsed by the table, so a bad
// value gives the same message here as in the studio.
#include "app/option_flags.h"

#include "app/commands.h"

#include <stdexcept>

namespace krause::cli {

void OptionFlags::add_to(CLI::App& command, const TrainConfig& defaults, bool model_only) {
    command_ = &command;
    for (const auto& o : train_options()) {
        if (model_only && !o.model) continue;
        std::string help = o.help;
        if (o.choices && o.text == TextKind::Choice) help += ": " + join_choices(o.choices());
        const std::string shown = option_text(o, defaults);
        auto* flag = command.add_option("--" + std::string(o.flag), text_[o.name], help);
        flag->type_name(o.is_integer() ? "INT" : o.is_real() ? "NUMBER" : "TEXT");
        if (o.is_optional()) {
            flag->default_str("preset");
        } else if (!shown.empty()) {
            flag->default_str(shown);
        }
    }
}

std::set<std::string> OptionFlags::apply(TrainConfig& config) const {
    std::set<std::string> given;
    for (const auto& o : train_options()) {
        const std::string flag = "--" + std::string(o.flag);
        const auto it = text_.find(o.name);
        if (it == text_.end() || command_->count(flag) == 0) continue;
        try {
            set_option(o, config, it->second);
        } catch (const std::invalid_argument& e) {
            throw UsageError(std::string("invalid training option: ") + e.what(),
                             "see `krause " + command_->get_name() + " --help`");
        }
        given.insert(o.name);
    }
    return given;
}

}  // namespace krause::cli
