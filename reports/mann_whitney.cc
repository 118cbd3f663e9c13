#include "mann_whitney.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace cclab {

double mann_whitney_p(const std::vector<double>& a, const std::vector<double>& b) {
  const double n1 = double(a.size()), n2 = double(b.size()), n = n1 + n2;
  if (a.empty() || b.empty()) return 1;
  // Ranks of the pooled values, ties sharing the mean of their ranks.
  std::vector<std::pair<double, bool>> pooled;  // (value, from a)
  for (double value : a) pooled.emplace_back(value, true);
  for (double value : b) pooled.emplace_back(value, false);
  std::sort(pooled.begin(), pooled.end());
  double rank_sum_a = 0, ties = 0;
  for (size_t first = 0; first < pooled.size();) {
    size_t last = first;
    while (last + 1 < pooled.size() && pooled[last + 1].first == pooled[first].first) ++last;
    const double mean_rank = double(first + last) / 2 + 1;
    for (size_t i = first; i <= last; ++i)
      if (pooled[i].second) rank_sum_a += mean_rank;
    const double t = double(last - first + 1);
    ties += t * t * t - t;
    first = last + 1;
  }
  const double u = rank_sum_a - n1 * (n1 + 1) / 2;
  const double mean = n1 * n2 / 2;
  const double variance = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1)));
  if (variance <= 0) return 1;
  const double distance = std::max(0.0, std::abs(u - mean) - 0.5);  // continuity correction
  return std::min(1.0, std::erfc(distance / std::sqrt(variance) / std::sqrt(2.0)));
}

}  // namespace cclab
