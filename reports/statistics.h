// Order statistics of repeated timings.
#pragma once

#include <vector>

namespace cclab {

struct Summary {
  double min = 0, median = 0, max = 0, p99 = 0;
};

/// Linear-interpolated quantile of sorted values, fraction in [0, 1].
double quantile(const std::vector<double>& sorted, double fraction);
/// min, median, max and 99th percentile of `values` (any order).
Summary summarize(std::vector<double> values);

/// Iteration times as a record keeps them (samples_us), for `cclab compare`'s test: every one up to
/// 1000, beyond that an even stride of 1000 through them, in iteration order.
std::vector<double> samples_for_record(const std::vector<double>& times);

}  // namespace cclab
