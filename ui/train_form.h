// The Train panel's form as data: which widget edits each option of the table, in drawing order.
// Free of Dear ImGui, so that tests can check the form covers every option without a display.
#pragma once

#include "training/options.h"

#include <string>
#include <vector>

namespace krause::ui {

enum class FormWidget {
    Combo,          // one of the option's choices
    DataSet,        // a data set kind combo and a folder field, making KIND[:DIR]
    Text,           // a line of text (a folder, a file)
    Integer,        // an integer field
    Real,           // a number field
    PresetInteger,  // a checkbox "set" and an integer field showing the preset's value when unset
    PresetReal,     // the same for a number
};

struct TrainFormField {
    const OptionSpec* option = nullptr;
    FormWidget widget = FormWidget::Text;
};

// Every option of training/options.h, each once, grouped as the table groups them; the form
// draws exactly this list.
const std::vector<TrainFormField>& train_form_fields();

}  // namespace krause::ui
