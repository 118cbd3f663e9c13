// Measured per-layer compute of a model (`cclab train --profile-layers FILE` writes it, `cclab plan
// --layers FILE` reads it): each layer's forward and backward seconds per step at one global batch
// and thread count, on one rank holding the whole model, with the host and CPU it ran on. The
// planner scales these times to the shards, slices and micro-batches of each strategy.
//
// The file is JSON (schema cclab.layers/1). The reader trusts nothing: a bounded size, every field
// present and in range, and layers that match the model the plan is for.
#pragma once

#include <string>
#include <vector>

#include "model/model.h"
#include "model/spec.h"

namespace cclab::train {

inline constexpr const char* kLayerTimesSchema = "cclab.layers/1";

struct LayerTime {
  std::string name;            // spec-grammar name ("conv5x5:6"), checked against the model's layer
  double forward_s = 0;        // per step, on the whole global batch
  double backward_s = 0;       // per step (with the gradient w.r.t. the layer's input where the model computes it)
  size_t parameters = 0;       // elements
  size_t output_elements = 0;  // per sample
};

struct LayerTimes {
  std::string model;  // the --model given (a built-in name or a layer list)
  size_t batch = 0;   // global batch the times were measured at
  int threads = 1;
  size_t steps = 0;     // timed steps averaged
  double update_s = 0;  // the SGD update of the whole model, per step
  double data_s = 0;    // loading the global batch, per step
  std::string host, cpu;
  std::vector<LayerTime> layers;

  double forward_s() const;
  double backward_s() const;
};

/// The times of `profile` (accumulated over `steps` steps of `model`) as a LayerTimes.
/// `update_s` and `data_s`: the run's mean update and data-loading seconds per step.
LayerTimes layer_times_of(const Model& model, const LayerProfile& profile, size_t steps, const std::string& model_name,
                          size_t batch, int threads, double update_s, double data_s);

/// Seconds of one forward + backward of each of `layers` (consecutive: a whole model, or a range of
/// one, which computes its input gradient unless it starts the model) on `batch` samples: the least
/// of a few repetitions after a warm-up pass (oneDNN creates its primitives on first use), since
/// ranks share their cores and one preempted repetition would misplace a pipeline split.
std::vector<double> measure_layer_seconds(const std::vector<LayerConfig>& layers, Backend& backend, uint64_t seed,
                                          size_t batch);

/// Writes `times` to `path` (whole or not at all).
void save_layer_times(const std::string& path, const LayerTimes& times);
std::string layer_times_to_json(const LayerTimes& times);

/// Reads a file save_layer_times wrote; UsageError naming the file and what is wrong for a missing,
/// oversized or malformed file, or a value out of range.
LayerTimes load_layer_times(const std::string& path);
LayerTimes layer_times_from_json(const std::string& text);

/// UsageError (naming `path`) unless `times` were measured for `plan` (same layers), at `batch` and
/// `threads`: the plan would otherwise rest on another model's or another batch's compute.
void check_layer_times_match(const LayerTimes& times, const ModelPlan& plan, const std::string& model, size_t batch,
                             int threads, const std::string& path);

}  // namespace cclab::train
