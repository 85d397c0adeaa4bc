// The Dynamics view's state and helpers: per-layer token-dynamics measures of the open model and
// the Compare model, and one image's token states drawn as moving particles.
#pragma once

#include "training/dynamics_job.h"

#include <imgui.h>

#include <memory>
#include <string>

namespace krause::ui {

struct StudioState;

// One model's dynamics job and what it produced.
struct DynamicsRun {
    std::unique_ptr<Job<DynamicsSnapshot>> job;
    std::shared_ptr<const DynamicsSnapshot> shown;
    std::string key;            // model, image and count the job was started for
    ImVec4 bounds{0, 0, 0, 0};  // particle extent over all layers: x0, y0, x1, y1
};

enum class ParticleColor { Intensity, Row, Column, Order };
const char* to_string(ParticleColor color);
bool parse_particle_color(const std::string& name, ParticleColor* color);

struct DynamicsState {
    int images = 1;   // measures averaged over this many test images from the selected one
    float layer = 0;  // shown layer of the particles; fractional while moving between two
    bool playing = false;
    float speed = 1.5f;  // layers per second while playing
    ParticleColor color = ParticleColor::Intensity;
    int cluster_fraction = 1;  // which eps fraction the cluster chart shows
    bool auto_run = true;      // start the jobs when the model or the image changes
    bool fit_layer = false;    // scale the canvas to the shown layer instead of all layers
    int selected = -1;         // the clicked token (network position), -1 none
    DynamicsRun main, second;
    std::string message;
};

// Starts (or restarts) the jobs of both models on the data set's selected image; false with a
// message when no model or data is there.
bool start_dynamics_runs(StudioState& state, std::string* error);
// True while the view still waits for data, a job, or a result that matches the current model
// and image; `failure` receives a job's or the data set's error.
bool dynamics_pending(const StudioState& state, std::string* failure);
// Takes in the newest snapshots; the Dynamics panel calls it each frame it is drawn.
void update_dynamics(StudioState& state);

}  // namespace krause::ui
