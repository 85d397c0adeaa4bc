// The resume merge shared by `krause train --resume` and the studio: the run's stored options,
// with the ones the user gave applied as each option's OnResume says.
#include "model/safetensors.h"
#include "training/options.h"
#include "training/trainer.h"

#include <filesystem>
#include <stdexcept>

namespace krause {

TrainConfig resume_config(const TrainConfig& given, const std::set<std::string>& given_names) {
    const std::string& path = given.resume;
    if (!std::filesystem::exists(path)) {
        throw std::invalid_argument(path + ": no such checkpoint to resume from");
    }
    const auto file = read_safetensors(path);
    const auto it = file.metadata.find(kMetaTrainConfig);
    if (it == file.metadata.end()) {
        throw std::invalid_argument(path +
                                    ": not a training checkpoint (no training config stored); "
                                    "resume from the checkpoint.safetensors of a training run");
    }
    TrainConfig merged;
    try {
        merged = TrainConfig::from_json(it->second);
    } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(path + ": " + e.what());
    }
    for (const auto& o : train_options()) {
        const bool given_here = given_names.count(o.name) > 0;
        switch (o.on_resume) {
            case OnResume::Stored:
                // The weights and the optimiser state were made with the stored value.
                if (given_here && !same_value(o, given, merged)) {
                    const std::string stored = option_text(o, merged);
                    throw std::invalid_argument(
                        "--" + std::string(o.flag) + " " + option_text(o, given) +
                        " cannot change on resume: " + path + " was trained with " +
                        (stored.empty() ? "the preset's value" : stored));
                }
                break;
            case OnResume::Given:
                if (given_here) copy_value(o, given, merged);
                break;
            case OnResume::Fresh:
                copy_value(o, given, merged);
                break;
        }
    }
    // A step count given alone replaces a stored epoch count (which would override it).
    if (given_names.count("steps") > 0 && given_names.count("epochs") == 0) merged.epochs = 0;
    // So does either of them a stored time budget.
    const bool count_given = given_names.count("steps") > 0 || given_names.count("epochs") > 0;
    if (count_given && given_names.count("minutes") == 0) merged.minutes = 0;
    return merged;
}

}  // namespace krause
