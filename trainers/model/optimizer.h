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
  /// step_range with the gradient g = own_gradients + contributions[0] + contributions[1] + ...
  /// (each contribution values.size() floats), summed per element in that order as the update
  /// reads it: one pass over memory where a sum into `own_gradients` then step_range take two
  /// (a data-parallel rank's reduce-scatter fused with its sharded update). Same float operations
  /// as the sum then step_range, so the results are identical.
  void step_range_summed(std::span<float> values, std::span<const float> own_gradients,
                         std::span<const float* const> contributions, size_t offset);

  float learning_rate() const { return learning_rate_; }
  void set_learning_rate(float learning_rate) { learning_rate_ = learning_rate; }
  /// The momentum buffer (one element per parameter): saved and restored by checkpoints.
  std::span<float> velocity() { return velocity_; }
  std::span<const float> velocity() const { return velocity_; }

 private:
  // Error unless `count` values with `gradient_count` gradients at `offset` lie inside the velocity.
  void check_range(size_t count, size_t gradient_count, size_t offset) const;
  // The update of `values` (elements [offset, offset + values.size()), checked) from gradient(i) for
  // each element i, vectorized, on the host.
  template <class Gradient>
  void update(std::span<float> values, size_t offset, Gradient gradient);

  float learning_rate_, momentum_;
  FloatBuffer velocity_;
};

}  // namespace cclab::train
