// Pure rank and offset math shared by the algorithms; no buffers, no transport.
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

/// Ring of `size` ranks in rank order: data flows from `left` to `rank` to `right`. The array is
/// cut into `size` chunks. In step s of reduce-scatter rank r sends chunk (r - s) and receives
/// chunk (r - s - 1), so after size-1 steps rank r holds the complete chunk (r + 1); in step s of
/// allgather it sends chunk (r + 1 - s), the one it completed or received last, and receives (r - s).
struct Ring {
  int rank;
  int size;
  int left() const { return (rank + size - 1) % size; }
  int right() const { return (rank + 1) % size; }
  int chunk(long offset) const { return int(((long(rank) + offset) % size + size) % size); }
  int reduce_scatter_send_chunk(int step) const { return chunk(-step); }
  int reduce_scatter_recv_chunk(int step) const { return chunk(-step - 1); }
  int allgather_send_chunk(int step) const { return chunk(1 - step); }
  int allgather_recv_chunk(int step) const { return chunk(-step); }
};

}  // namespace cclab
