#include "modes/stage_balance.h"

#include <algorithm>
#include <limits>
#include <string>

#include "cclab/error.h"

namespace cclab::train {

std::vector<size_t> balance_stages(const std::vector<double>& layer_costs, size_t stages) {
  const size_t layers = layer_costs.size();
  if (stages == 0) throw UsageError("a pipeline needs at least one stage");
  if (stages > layers)
    throw UsageError(std::to_string(stages) + " pipeline stages for a model of " + std::to_string(layers) +
                     " layers: every stage needs at least one layer");
  std::vector<double> prefix(layers + 1, 0.0);
  for (size_t i = 0; i < layers; ++i) prefix[i + 1] = prefix[i] + layer_costs[i];
  // slowest[k][j]: the least possible cost of the slowest stage when the first j layers form k
  // stages; last_begin[k][j]: where the k-th of those stages begins in that best split.
  constexpr double kInfinity = std::numeric_limits<double>::infinity();
  std::vector<std::vector<double>> slowest(stages + 1, std::vector<double>(layers + 1, kInfinity));
  std::vector<std::vector<size_t>> last_begin(stages + 1, std::vector<size_t>(layers + 1, 0));
  slowest[0][0] = 0;
  for (size_t k = 1; k <= stages; ++k)
    for (size_t j = k; j <= layers; ++j)
      for (size_t i = k - 1; i < j; ++i) {
        const double cost = std::max(slowest[k - 1][i], prefix[j] - prefix[i]);
        if (cost < slowest[k][j]) {
          slowest[k][j] = cost;
          last_begin[k][j] = i;
        }
      }
  std::vector<size_t> boundaries(stages + 1, layers);
  for (size_t k = stages; k > 0; --k) boundaries[k - 1] = last_begin[k][boundaries[k]];
  return boundaries;
}

std::vector<size_t> given_balance(const std::vector<size_t>& balance, size_t stages, size_t layers) {
  size_t total = 0;
  for (size_t count : balance) {
    if (count == 0) throw UsageError("--balance gives a stage no layer");
    total += count;
  }
  if (balance.size() != stages || total != layers)
    throw UsageError("--balance needs " + std::to_string(stages) + " layer counts that add up to the model's " +
                     std::to_string(layers) + " layers");
  std::vector<size_t> boundaries{0};
  for (size_t count : balance) boundaries.push_back(boundaries.back() + count);
  return boundaries;
}

}  // namespace cclab::train
