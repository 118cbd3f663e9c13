// The Mann-Whitney U test, as Google Benchmark's compare.py uses it to tell a change from noise:
// are two sets of timings drawn from the same distribution? It assumes no shape (timings are
// skewed, with a long tail) and only compares ranks.
#pragma once

#include <vector>

namespace cclab {

/// Two-sided p-value of the U test of `a` against `b` (normal approximation with the tie and
/// continuity corrections). 1 when either set is empty or every value is equal.
double mann_whitney_p(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace cclab
