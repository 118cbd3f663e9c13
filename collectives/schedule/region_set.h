// Element ranges of one rank's buffers, for the cost model (what a call touches and shares) and
// the executor (the copies no step reads again).
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "cclab/schedule.h"

namespace cclab {

/// A set of element ranges of one rank's buffers (merged per buffer), to tell how many elements of
/// a region fall inside it. In place, input and output are one memory.
class RegionSet {
 public:
  explicit RegionSet(bool inplace) : inplace_(inplace) {}

  void add(const Region& region) {
    if (region.count > 0) ranges_[key(region.buffer)].emplace_back(region.offset, region.offset + region.count);
  }

  /// Call once after the last add().
  void merge() {
    for (auto& [buffer, ranges] : ranges_) {
      std::sort(ranges.begin(), ranges.end());
      std::vector<std::pair<size_t, size_t>> merged;
      for (const auto& range : ranges)
        if (!merged.empty() && range.first <= merged.back().second)
          merged.back().second = std::max(merged.back().second, range.second);
        else
          merged.push_back(range);
      ranges = std::move(merged);
    }
  }

  /// Elements of `buffer` in the set.
  size_t elements(BufferKind buffer) const {
    auto found = ranges_.find(key(buffer));
    size_t total = 0;
    if (found != ranges_.end())
      for (const auto& [begin, end] : found->second) total += end - begin;
    return total;
  }

  size_t overlap(const Region& region) const {
    auto found = ranges_.find(key(region.buffer));
    if (found == ranges_.end() || region.count == 0) return 0;
    const auto& ranges = found->second;
    const size_t begin = region.offset, end = region.offset + region.count;
    size_t inside = 0;
    auto it = std::upper_bound(ranges.begin(), ranges.end(), std::pair{begin, SIZE_MAX});
    if (it != ranges.begin()) --it;
    for (; it != ranges.end() && it->first < end; ++it)
      if (it->second > begin) inside += std::min(end, it->second) - std::max(begin, it->first);
    return inside;
  }

 private:
  BufferKind key(BufferKind buffer) const {
    return inplace_ && buffer == BufferKind::input ? BufferKind::output : buffer;
  }
  bool inplace_;
  std::map<BufferKind, std::vector<std::pair<size_t, size_t>>> ranges_;
};

}  // namespace cclab
