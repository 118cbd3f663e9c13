#include "model/optimizer.h"

#include <algorithm>

#include "cclab/error.h"
#include "cclab/trace.h"
#include "model/compute_device.h"

namespace cclab::train {

SgdMomentum::SgdMomentum(size_t count, float learning_rate, float momentum)
    : learning_rate_(learning_rate), momentum_(momentum), velocity_(count, 0.0f) {}

void SgdMomentum::step(ParameterStore& store) { step_range(store.values(), store.gradients(), 0); }

void SgdMomentum::check_range(size_t count, size_t gradient_count, size_t offset) const {
  if (count != gradient_count || offset + count > velocity_.size())
    throw Error("SGD step over elements [" + std::to_string(offset) + ", " + std::to_string(offset + count) +
                ") with " + std::to_string(gradient_count) + " gradients, outside the optimizer's " +
                std::to_string(velocity_.size()));
}

template <class Gradient>
void SgdMomentum::update(std::span<float> values, size_t offset, Gradient gradient) {
  float* value = values.data();
  float* velocity = velocity_.data() + offset;
  const float learning_rate = learning_rate_, momentum = momentum_;
  const long count = static_cast<long>(values.size());
#pragma omp parallel for simd schedule(static) if (count > (1 << 16)) firstprivate(gradient)
  for (long i = 0; i < count; ++i) {
    velocity[i] = momentum * velocity[i] + gradient(i);
    value[i] -= learning_rate * velocity[i];
  }
}

void SgdMomentum::step_range(std::span<float> values, std::span<const float> gradients, size_t offset) {
  check_range(values.size(), gradients.size(), offset);
  const TraceSpan span("compute", "update");
  if (compute_device().sgd_momentum(values, gradients, std::span(velocity_).subspan(offset, values.size()),
                                    learning_rate_, momentum_))
    return;
  const float* gradient = gradients.data();
  update(values, offset, [gradient](long i) { return gradient[i]; });
}

void SgdMomentum::step_range_summed(std::span<float> values, std::span<const float> own_gradients,
                                    std::span<const float* const> contributions, size_t offset) {
  if (contributions.empty()) return step_range(values, own_gradients, offset);
  check_range(values.size(), own_gradients.size(), offset);
  const TraceSpan span("compute", "update");
  const float* own = own_gradients.data();
  // One contribution (two ranks) is the common case, summed inside the update's loop.
  if (contributions.size() == 1) {
    const float* first = contributions[0];
    return update(values, offset, [own, first](long i) { return own[i] + first[i]; });
  }
  // With the loop over the contributions inside the element loop the compiler vectorizes neither:
  // sum a chunk that stays in L1 first, in the same order, then update from it.
  constexpr size_t kChunk = 1024;
  float sum[kChunk];
  for (size_t first = 0; first < own_gradients.size(); first += kChunk) {
    const size_t count = std::min(kChunk, own_gradients.size() - first);
    const float *own_chunk = own + first, *first_chunk = contributions[0] + first;
#pragma omp simd
    for (size_t i = 0; i < count; ++i) sum[i] = own_chunk[i] + first_chunk[i];
    for (const float* contribution : contributions.subspan(1)) {
      const float* chunk = contribution + first;
#pragma omp simd
      for (size_t i = 0; i < count; ++i) sum[i] += chunk[i];
    }
    const float* summed = sum;
    update(values.subspan(first, count), offset + first, [summed](long i) { return summed[i]; });
  }
}

}  // namespace cclab::train
