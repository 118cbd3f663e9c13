#include "statistics.h"

#include <algorithm>
#include <cmath>

namespace cclab {

double quantile(const std::vector<double>& sorted, double fraction) {
  if (sorted.empty()) return 0;
  const double position = fraction * double(sorted.size() - 1);
  const size_t below = size_t(std::floor(position));
  const size_t above = std::min(below + 1, sorted.size() - 1);
  return sorted[below] + (sorted[above] - sorted[below]) * (position - double(below));
}

Summary summarize(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  if (values.empty()) return {};
  return {values.front(), quantile(values, 0.5), values.back(), quantile(values, 0.99)};
}

std::vector<double> samples_for_record(const std::vector<double>& times) {
  constexpr size_t kMostSamples = 1000;
  if (times.size() <= kMostSamples) return times;
  std::vector<double> kept;
  for (size_t i = 0; i < kMostSamples; ++i) kept.push_back(times[i * times.size() / kMostSamples]);
  return kept;
}

}  // namespace cclab
