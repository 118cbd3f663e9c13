// SGD with momentum (PyTorch's form: v = momentum * v + g; p -= lr * v) over the flat buffers.
#pragma once

#include <span>

#include "model/buffer.h"
#include "model/parameters.h"

namespace cclab::train {

class SgdMomentum {
 public:
  /// `count` parameters; the velocity starts at zero.
  SgdMomentum(size_t count, float learning_rate, float momentum);

  /// Updates every parameter of `store` from its gradients.
  void step(ParameterStore& store);
  /// Updates elements [offset, offset + values.size()) of the flat buffer: `values` and `gradients`
  /// are those elements (a data-parallel rank updating a bucket as soon as it is reduced, or a
  /// parameter server updating the shard it owns).
  void step_range(std::span<float> values, std::span<const float> gradients, size_t offset);

  float learning_rate() const { return learning_rate_; }
  void set_learning_rate(float learning_rate) { learning_rate_ = learning_rate; }
  /// The momentum buffer (one element per parameter): saved and restored by checkpoints.
  std::span<float> velocity() { return velocity_; }
  std::span<const float> velocity() const { return velocity_; }

 private:
  float learning_rate_, momentum_;
  FloatBuffer velocity_;
};

}  // namespace cclab::train
