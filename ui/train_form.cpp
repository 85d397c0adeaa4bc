// The Train panel's list of fields, made from the option table.
#include "ui/train_form.h"

namespace krause::ui {

namespace {

FormWidget widget_for(const OptionSpec& o) {
    if (o.text == TextKind::DataSpec) return FormWidget::DataSet;
    if (o.text == TextKind::Choice) return FormWidget::Combo;
    if (o.is_optional()) return o.is_integer() ? FormWidget::PresetInteger : FormWidget::PresetReal;
    if (o.is_integer()) return FormWidget::Integer;
    if (o.is_real()) return FormWidget::Real;
    return FormWidget::Text;
}

std::vector<TrainFormField> make_fields() {
    std::vector<TrainFormField> fields;
    for (auto group : {OptionGroup::Data, OptionGroup::Model, OptionGroup::Optimiser,
                       OptionGroup::Schedule, OptionGroup::Run, OptionGroup::Testing}) {
        for (const auto& o : train_options()) {
            if (o.group == group) fields.push_back({&o, widget_for(o)});
        }
    }
    return fields;
}

}  // namespace

const std::vector<TrainFormField>& train_form_fields() {
    static const std::vector<TrainFormField> fields = make_fields();
    return fields;
}

}  // namespace krause::ui
