// The message sizes of a benchmark sweep (-b, -e, -f, -i; nccl-tests' semantics).
#pragma once

#include <cstddef>
#include <vector>

namespace cclab {

/// Sizes from min_bytes to max_bytes, each the previous plus step_bytes, or times step_factor when
/// step_bytes is 0 (a factor too small to grow a size still moves it on by one byte), rounded down to
/// whole elements of `element_bytes`, each size once.
std::vector<size_t> size_sweep(size_t min_bytes, size_t max_bytes, size_t step_bytes, double step_factor,
                               size_t element_bytes = 1);

}  // namespace cclab
