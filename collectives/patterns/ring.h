// Ring of ranks: pure rank and chunk-index math.
#pragma once

namespace cclab {

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
