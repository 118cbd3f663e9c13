#include "algorithms/direct_reads.h"

#include <algorithm>

namespace cclab {

size_t direct_chunks(const CollectiveArgs& args, int ranks) {
  const size_t largest_block = balanced_part(args.count, size_t(ranks), 0).count;
  const size_t segment = std::max<size_t>(args.segment_elements(), 1);
  return std::clamp<size_t>((largest_block + segment - 1) / segment, 1, kMostDirectChunks);
}

void reduce_from_every_peer(ScheduleWriter& writer, int ranks, int rank, uint32_t tag, Region own, Region target,
                            bool finalize) {
  Region source = own;
  for (int step = 1; step < ranks; ++step) {
    const int peer = (rank + step) % ranks;
    writer.read_reduce(peer, tag, target, source, finalize && step == ranks - 1);
    source = target;
  }
}

}  // namespace cclab
