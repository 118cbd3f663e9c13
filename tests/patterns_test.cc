// Pattern math alone: partitions cover the array exactly, ring indices walk every chunk once.
#include <gtest/gtest.h>

#include <set>

#include "patterns/partition.h"
#include "patterns/ring.h"

namespace cclab {
namespace {

TEST(Partition, PartsAreContiguousBalancedAndCoverTheArray) {
  for (size_t count : {0, 1, 2, 7, 64, 1000, 1031})
    for (size_t parts : {1, 2, 3, 7, 64}) {
      size_t next = 0;
      for (size_t i = 0; i < parts; ++i) {
        const Span part = balanced_part(count, parts, i);
        EXPECT_EQ(part.offset, next);
        EXPECT_TRUE(part.count == count / parts || part.count == count / parts + 1);
        next += part.count;
      }
      EXPECT_EQ(next, count);
    }
  const Span inner = balanced_part(Span{100, 10}, 3, 1);
  EXPECT_EQ(inner.offset, 104u);
  EXPECT_EQ(inner.count, 3u);
}

TEST(Ring, EveryStepMovesADifferentChunkAndEndsOwningTheNext) {
  for (int size : {1, 2, 3, 5, 8}) {
    for (int rank = 0; rank < size; ++rank) {
      const Ring ring{rank, size};
      EXPECT_EQ((Ring{ring.right(), size}.left()), rank);
      std::set<int> received;
      for (int step = 0; step + 1 < size; ++step) {
        received.insert(ring.reduce_scatter_recv_chunk(step));
        // What I receive in step s is what my left neighbour sends in step s.
        EXPECT_EQ(ring.reduce_scatter_recv_chunk(step), (Ring{ring.left(), size}.reduce_scatter_send_chunk(step)));
        EXPECT_EQ(ring.allgather_recv_chunk(step), (Ring{ring.left(), size}.allgather_send_chunk(step)));
      }
      EXPECT_EQ(int(received.size()), size - 1);
      EXPECT_EQ(received.count(rank), 0u);  // never receives its own chunk in reduce-scatter
      if (size > 1) {
        EXPECT_EQ(ring.reduce_scatter_recv_chunk(size - 2), ring.chunk(1));
      }
    }
  }
}

}  // namespace
}  // namespace cclab
