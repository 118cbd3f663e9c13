#include "model/loss.h"

#include <cmath>

#include "cclab/error.h"
#include "cclab/trace.h"
#include "model/compute_device.h"

namespace cclab::train {

LossResult softmax_cross_entropy(const float* scores, const int32_t* labels, size_t batch, size_t classes,
                                 float* scores_grad, double normaliser) {
  const TraceSpan span("compute", "loss");
  if (std::optional<LossResult> on_device =
          compute_device().softmax_cross_entropy(scores, labels, batch, classes, scores_grad, normaliser))
    return *on_device;
  LossResult result;
  const double scale = 1.0 / normaliser;
  for (size_t n = 0; n < batch; ++n) {
    const float* row = scores + n * classes;
    const int32_t label = labels[n];
    if (label < 0 || static_cast<size_t>(label) >= classes)
      throw Error("label " + std::to_string(label) + " is outside the model's " + std::to_string(classes) + " classes");
    size_t best = 0;
    for (size_t c = 1; c < classes; ++c)
      if (row[c] > row[best]) best = c;
    // Shift by the maximum so exp never overflows; sums in double for a loss exact to float.
    const double shift = row[best];
    double sum = 0;
    for (size_t c = 0; c < classes; ++c) sum += std::exp(double(row[c]) - shift);
    const double log_sum = std::log(sum);
    result.loss_sum += log_sum - (double(row[label]) - shift);
    result.correct += best == static_cast<size_t>(label);
    if (scores_grad) {
      float* grad = scores_grad + n * classes;
      for (size_t c = 0; c < classes; ++c) {
        const double probability = std::exp(double(row[c]) - shift - log_sum);
        grad[c] = static_cast<float>((probability - (c == static_cast<size_t>(label) ? 1.0 : 0.0)) * scale);
      }
    }
  }
  return result;
}

}  // namespace cclab::train
