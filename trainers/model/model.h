// A Model is a sequence of layers over one flat parameter buffer (parameters.h). This header is also
// the map for the parallel modes built on it (DESIGN 3.6); single-process training (trainer.h) uses
// exactly the calls they use.
//
// Building blocks
//   - LayerConfig (layer.h): backend-independent description of one layer instance. plan_model()
//     (spec.h) gives the configs of a whole model; a mode edits that list before building.
//   - Model(configs, backend, seed): builds the layers, lays out parameters/gradients in one flat
//     buffer each (reverse layer order), and initialises every parameter from (seed, layer index,
//     position in the whole layer) so that any split of the model starts from identical weights.
//   - Activations(model, max_batch): the buffers of ONE batch in flight: every layer boundary's
//     activation and gradient, and every layer's workspace. Layers keep no per-batch state, so a
//     pipeline stage holds one Activations per micro-batch in flight.
//   - forward / backward run a range [first, last) of layers; Layer::forward/backward run one.
//
// How each mode fits (the modes themselves: trainers/modes/, one file each)
//   - data-parallel: each rank builds the whole model and trains on its shard of every global batch
//     (BatchLoader with Shard{rank, ranks}); the loss is normalised by the GLOBAL batch size, so
//     summing gradients over ranks gives single-process gradients exactly. backward() calls
//     BackwardOptions::on_gradients_ready(range) right after each layer's parameter gradients are
//     written; ranges arrive in increasing offset order (parameters.h), so a bucketer keeps a
//     watermark and starts the allreduce of bucket [a, b) once the watermark passes b, while
//     backward goes on with earlier layers. Every rank issues buckets in the same order. A
//     parameter-server variant uses the same hook to push ranges, and SgdMomentum::step_range to
//     update the shard a server owns.
//   - tensor-parallel: replace a layer's config by column_slice(config, t, T) (output channels or
//     features) or row_slice(config, t, T) (input channels/features; bias on part 0) before building.
//     The mode inserts the collectives between layers (Megatron's f and g): allgather after a column
//     layer that is not followed by its row partner, allreduce after a row layer's forward, and the
//     conjugates in backward; it runs the layers one at a time with forward(acts, batch, training,
//     i, i + 1) or Layer::forward directly.
//   - pipeline-parallel: stage s builds Model(std::vector(configs.begin() + a, configs.begin() + b))
//     (global layer indices are kept in the configs, so initial weights match the whole model).
//     Activations::activation(0) is where the previous stage's output is received and gradient(0)
//     is what is sent back; the last stage computes the loss. With m micro-batches the stage keeps
//     up to m Activations (GPipe) or as many as in flight (1F1B) and calls backward with
//     accumulate = true for every micro-batch after the first.
//   - hybrid: the above composed (data-parallel conv layers + tensor-parallel fc layers; data x
//     pipeline grids). Nothing here assumes one of them.
#pragma once

#include <functional>
#include <limits>
#include <memory>
#include <vector>

#include "model/buffer.h"
#include "model/layer.h"
#include "model/parameters.h"

namespace cclab::train {

/// Called during backward when one layer's parameter gradients are final for this batch.
using GradientReadyHook = std::function<void(const ParameterRange&)>;

struct BackwardOptions {
  /// Add into the gradient buffer instead of overwriting it (micro-batches after the first).
  bool accumulate = false;
  /// Compute the gradient w.r.t. the range's input (Activations::gradient(first)). Off for the first
  /// layer of a whole model; on for a pipeline stage that must send it back.
  bool input_gradient = false;
  GradientReadyHook on_gradients_ready;
};

/// Accumulated wall time per layer, forward and backward (for `--profile-layers`).
struct LayerProfile {
  std::vector<double> forward_s, backward_s;
  std::vector<size_t> calls;
};

class Model {
 public:
  static constexpr size_t kAll = std::numeric_limits<size_t>::max();

  /// Builds `configs` (consecutive: each layer's input shape is the previous one's output, or at
  /// least its element count for an fc) on `backend` and initialises the parameters from `seed`.
  Model(std::vector<LayerConfig> configs, Backend& backend, uint64_t seed);

  size_t size() const { return layers_.size(); }
  Layer& layer(size_t index) { return *layers_.at(index); }
  const Layer& layer(size_t index) const { return *layers_.at(index); }
  ActivationShape input_shape() const { return layers_.front()->input_shape(); }
  ActivationShape output_shape() const { return layers_.back()->output_shape(); }
  ParameterStore& parameters() { return parameters_; }
  const ParameterStore& parameters() const { return parameters_; }
  const std::string& backend_name() const { return backend_name_; }
  /// ParameterStore::place, and every layer bound again to its run of the new memory.
  void place_parameters(std::span<float> values, std::span<float> gradients);

  /// Runs layers [first, last) on activations.activation(first) .. activation(last).
  void forward(class Activations& activations, size_t batch, bool training, size_t first = 0, size_t last = kAll);
  /// Backward over layers [last, first) given activations.gradient(last); the activations must hold
  /// the training forward pass of the same batch. Writes (or adds) parameter gradients and calls the
  /// hook after each layer that has parameters.
  void backward(class Activations& activations, size_t batch, const BackwardOptions& options, size_t first = 0,
                size_t last = kAll);

  /// Per-layer timing of every later forward/backward call (null: off, the default).
  void set_profile(LayerProfile* profile);

 private:
  void bind_layers();

  std::vector<std::unique_ptr<Layer>> layers_;
  ParameterStore parameters_;
  std::string backend_name_;
  LayerProfile* profile_ = nullptr;
};

/// Buffers of one batch in flight through a Model: activation(i) is the input of layer i (so
/// activation(0) is the model input and activation(size()) its output), gradient(i) the loss
/// gradient w.r.t. activation(i), workspace(i) layer i's workspace. Sized for up to max_batch samples.
class Activations {
 public:
  Activations(const Model& model, size_t max_batch);
  /// Buffers of layers [first, last) only (boundaries first..last; the others stay empty): for a mode
  /// that runs ranges of one model on different batch sizes (hybrid: convolutions on a shard of the
  /// batch, fc layers on all of it) without holding every boundary at the largest size.
  Activations(const Model& model, size_t max_batch, size_t first, size_t last);

  size_t max_batch() const { return max_batch_; }
  float* activation(size_t boundary) { return activations_.at(boundary).data(); }
  float* gradient(size_t boundary) { return gradients_.at(boundary).data(); }
  std::byte* workspace(size_t layer) { return workspaces_.at(layer).data(); }
  float* input() { return activation(0); }
  float* output() { return activation(activations_.size() - 1); }
  float* output_gradient() { return gradient(gradients_.size() - 1); }

 private:
  size_t max_batch_;
  std::vector<FloatBuffer> activations_, gradients_;
  std::vector<ByteBuffer> workspaces_;
};

}  // namespace cclab::train
