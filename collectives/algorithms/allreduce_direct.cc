// Direct allreduce within a node (words as in direct_reads.h): rank r reduces block r from every
// rank's input where it lies, chunk by chunk, into its output; then every rank reads the other
// blocks, finished, from their owners' outputs. No rank receives a copy it then reduces: per
// element, the reducer reads each input once, and each reader reads the result once.
//
// Per rank, peers read (N-1)/N of the array from its input and (N-1)/N of it from its output:
// 2(N-1)/N in all, as the ring sends (DESIGN 3.7).
#include "algorithms/direct_reads.h"
#include "algorithms/fragments.h"
#include "algorithms/regions.h"

namespace cclab {

Schedule build_allreduce_direct(const Topology& topology, int rank, const CollectiveArgs& args) {
  const int ranks = topology.ranks();
  ScheduleWriter writer(args, ranks, rank);
  if (ranks == 1) {
    copy_input_to_output(writer, args);
    return std::move(writer).finish();
  }
  const Group everyone = Group::everyone(ranks, rank);
  const size_t chunks = direct_chunks(args, ranks);
  for (size_t k = 0; k < chunks; ++k) {
    reduce_own_chunk(writer, args, ranks, rank, k, chunks);
    const Region own = region_of(BufferKind::output, chunk_of_block(args, ranks, rank, k, chunks));
    expose_to_every_peer(writer, everyone, result_tag(k), [&](int) { return own; });
    read_from_every_peer(writer, everyone, result_tag(k), [&](int owner) {
      return region_of(BufferKind::output, chunk_of_block(args, ranks, owner, k, chunks));
    });
  }
  return std::move(writer).finish();
}

}  // namespace cclab
