// Splitting an array into nearly equal parts: pure offset math.
#pragma once

#include <cstddef>

namespace cclab {

/// Elements [offset, offset + count) of an array.
struct Span {
  size_t offset = 0;
  size_t count = 0;
};

/// Part `index` of `count` elements split into `parts` nearly equal parts: the first
/// count % parts parts get one element more. Parts may be empty when count < parts.
Span balanced_part(size_t count, size_t parts, size_t index);
/// Sub-span `index` of `span` split into `parts` balanced parts.
Span balanced_part(Span span, size_t parts, size_t index);

}  // namespace cclab
