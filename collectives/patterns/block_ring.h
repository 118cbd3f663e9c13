// Ring reduce-scatter and allgather in the layout of those collectives: pure rank and block math.
#pragma once

#include "patterns/ring.h"

namespace cclab {

/// The ring of Ring with block b of the array standing for Ring's chunk b + 1, so that the
/// reduce-scatter leaves rank r with block r (Ring leaves it with chunk r + 1) and the allgather
/// starts from rank r holding block r, as the collectives reduce_scatter and allgather define.
/// In reduce-scatter step s rank r sends block r - s - 1 (its input in step 0, then the partial
/// sum it completed one step ago) and receives block r - s - 2; in allgather step s it sends
/// block r - s (its own, then the one received one step ago) and receives block r - s - 1.
struct BlockRing {
  Ring ring;

  int reduce_scatter_send_block(int step) const { return ring.chunk(-step - 1); }
  int reduce_scatter_recv_block(int step) const { return ring.chunk(-step - 2); }
  int allgather_send_block(int step) const { return ring.chunk(-step); }
  int allgather_recv_block(int step) const { return ring.chunk(-step - 1); }
};

}  // namespace cclab
