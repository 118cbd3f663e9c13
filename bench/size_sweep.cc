#include "size_sweep.h"

#include <algorithm>

namespace cclab {

std::vector<size_t> size_sweep(size_t min_bytes, size_t max_bytes, size_t step_bytes, double step_factor,
                               size_t element_bytes) {
  std::vector<size_t> sizes;
  for (size_t bytes = min_bytes; bytes <= max_bytes;) {
    const size_t rounded = bytes / element_bytes * element_bytes;
    if (sizes.empty() || sizes.back() != rounded) sizes.push_back(rounded);
    const double scaled = double(bytes) * step_factor;
    const size_t next = step_bytes ? bytes + step_bytes
                                   : scaled > double(max_bytes) ? max_bytes + 1 : std::max(size_t(scaled), bytes + 1);
    if (next <= bytes) break;  // bytes + step_bytes wrapped around
    bytes = next;
  }
  return sizes;
}

}  // namespace cclab
