// What a user can do, as functions over StudioState shared by the panels and the script runner.
// Each returns false with a message for the user when it cannot start.
#pragma once

#include "training/estimate.h"
#include "ui/studio_state.h"

#include <string>

namespace krause::ui {

// First start: recent files, browser folder, data defaults, and which model to open (the given
// checkpoint, else the bundled one, else a notice offering to train).
void init_studio(StudioState& state, const std::string& checkpoint);
// Once per frame on the UI thread: adopts finished loads and the newest job snapshots.
void update_studio(StudioState& state);
// Thumbnails per page of the data set browser.
int data_page_size();

void open_model(StudioState& state, ModelSlot& slot, const std::string& path);
// The bundled model that `slot` holds, or null.
const BundledModel* bundled_in(const StudioState& state, const ModelSlot& slot);
// The bundled models (present on this machine) that differ from the open one only in their
// attention: its twins, which the Compare panel offers first.
std::vector<const BundledModel*> bundled_twins(const StudioState& state);

bool start_sample(StudioState& state, std::string* error);
bool save_sample_png(StudioState& state, const std::string& path, std::string* error);

// "KIND" or "KIND:DIR" as data/dataset.h parses it.
std::string data_spec(const std::string& kind, const std::string& dir);
void load_data(StudioState& state);
bool start_complete(StudioState& state, std::string* error);

// Explains sub-pixel (row, col, channel) of image `image` of `source` (sample, complete, data,
// preview, compare-a, compare-b, inspect) with the main model, and with the second model too
// when one is open.
bool inspect_pixel(StudioState& state, const std::string& source, int image, int row, int col,
                   int channel, std::string* error);
// The per-layer measures averaged over every query of the inspected image, for both models.
bool start_image_averages(StudioState& state, std::string* error);
bool start_compare_samples(StudioState& state, std::string* error);

// Starts training; a CPU run estimated to take hours only sets train.long_run_warning, and starts
// when called again with train.long_run_confirmed set.
bool start_train(StudioState& state, std::string* error);
// What the Train panel's progress bar shows: the run's progress without an ETA once it has ended
// or while it is paused, and in `label` its state ("paused" while it waits).
Progress train_progress(const TrainState& t, std::string* label);

// Moves the inspected pixel by (d_row, d_col) within the image (the arrow keys of Inspect).
bool move_inspected_pixel(StudioState& state, int d_row, int d_col, std::string* error);
// Probes the inspected pixel with the Compare panel's model too, when it is open and takes
// images of the same shape; called on every new pixel and when that model opens.
void probe_second_model(StudioState& state);

// Writes a view as PNG with each image pixel `scale` x `scale`: "samples", "completions",
// "inspect-grid" or "inspect-map" (the enlarged one).
bool export_png(StudioState& state, const std::string& what, int scale, const std::string& path,
                std::string* error);
// Label names of a data set: CIFAR-10's batches.meta.txt when its folder has one, else the
// published list of the kind.
std::vector<std::string> class_names(const std::string& kind, const std::string& dir);
// "3 (cat)", or the number alone when the label has no name.
std::string label_text(const DataState& data, int image);
std::string long_run_text(const TrainEstimate& estimate);

}  // namespace krause::ui
