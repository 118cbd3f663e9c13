// The model's parameters and gradients, each in ONE flat float buffer, so that a data-parallel
// mode can allreduce them in buckets and a parameter server can own shards of them.
//
// Layout: layers are laid out in REVERSE order (the last layer at offset 0), each as [weights, bias].
// Backward visits layers last to first, so the gradients become ready in increasing offset order:
// at any moment during backward the ready gradients are one prefix [0, watermark) of the buffer, and
// a bucket [a, b) can be reduced as soon as the watermark passes b (as PyTorch DDP orders its
// buckets by reverse registration order for the same reason).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "model/buffer.h"
#include "model/layer.h"

namespace cclab::train {

/// One layer's run of the flat buffers: elements [offset, offset + count).
struct ParameterRange {
  size_t layer = 0;   // index of the layer in its Model
  size_t offset = 0;  // elements
  size_t count = 0;   // elements
};

class ParameterStore {
 public:
  ParameterStore() = default;
  /// `counts[i]` parameters for layer i.
  explicit ParameterStore(const std::vector<size_t>& counts);
  // The spans point into the owned buffers (or memory given to place()): moving keeps them valid,
  // copying would not.
  ParameterStore(ParameterStore&&) = default;
  ParameterStore& operator=(ParameterStore&&) = default;
  ParameterStore(const ParameterStore&) = delete;
  ParameterStore& operator=(const ParameterStore&) = delete;

  /// Moves the values and gradients, contents and all, into memory the caller keeps alive for the
  /// store's life (size() floats each: node-shared memory, so peers read them where they lie).
  /// Spans taken before (Layer::bind) must be taken again: Model::place_parameters does.
  void place(std::span<float> values, std::span<float> gradients);

  std::span<float> values() { return values_; }
  std::span<const float> values() const { return values_; }
  std::span<float> gradients() { return gradients_; }
  std::span<const float> gradients() const { return gradients_; }
  size_t size() const { return values_.size(); }

  /// Layer i's run (count 0 for layers without parameters).
  const ParameterRange& range(size_t layer) const { return ranges_.at(layer); }
  /// Every layer that has parameters, in the order backward produces their gradients (last layer
  /// first = increasing offset).
  std::vector<ParameterRange> backward_order() const;

  void zero_gradients();

 private:
  FloatBuffer owned_values_, owned_gradients_;  // empty once placed elsewhere
  std::span<float> values_, gradients_;
  std::vector<ParameterRange> ranges_;
};

/// Initial values of one layer instance, written into `weights` and `bias`: uniform in
/// (-1/sqrt(fan_in), 1/sqrt(fan_in)) for both (PyTorch's default for Conv2d and Linear). Each value
/// is a hash of (seed, layer index, the element's position in the WHOLE layer), so a tensor-parallel
/// slice of a layer starts with exactly the corresponding part of the whole layer's values.
void initialize_layer(const LayerConfig& layer, uint64_t seed, std::span<float> weights, std::span<float> bias);

}  // namespace cclab::train
