#include "model/optimizer.h"

#include "cclab/error.h"

namespace cclab::train {

SgdMomentum::SgdMomentum(size_t count, float learning_rate, float momentum)
    : learning_rate_(learning_rate), momentum_(momentum), velocity_(count, 0.0f) {}

void SgdMomentum::step(ParameterStore& store) { step_range(store.values(), store.gradients(), 0); }

void SgdMomentum::step_range(std::span<float> values, std::span<const float> gradients, size_t offset) {
  if (values.size() != gradients.size() || offset + values.size() > velocity_.size())
    throw Error("SGD step over elements [" + std::to_string(offset) + ", " + std::to_string(offset + values.size()) +
                ") outside the optimizer's " + std::to_string(velocity_.size()));
  float* value = values.data();
  const float* gradient = gradients.data();
  float* velocity = velocity_.data() + offset;
  const float learning_rate = learning_rate_, momentum = momentum_;
  const long count = static_cast<long>(values.size());
#pragma omp parallel for simd schedule(static) if (count > (1 << 16))
  for (long i = 0; i < count; ++i) {
    velocity[i] = momentum * velocity[i] + gradient[i];
    value[i] -= learning_rate * velocity[i];
  }
}

}  // namespace cclab::train
