// Direct allgather within a node (words as in direct_reads.h): every rank reads every other
// rank's block where it lies, chunk by chunk, straight into its output. Per rank, peers read its
// block N-1 times: (N-1)/N of the array, as the ring sends (DESIGN 3.7).
#include "algorithms/direct_reads.h"
#include "algorithms/fragments.h"
#include "algorithms/regions.h"

namespace cclab {

Schedule build_allgather_direct(const Topology& topology, int rank, const CollectiveArgs& args) {
  const int ranks = topology.ranks();
  ScheduleWriter writer(args, ranks, rank);
  const size_t per_rank = args.count / size_t(ranks);
  const Region own_block{BufferKind::output, size_t(rank) * per_rank, per_rank};
  writer.copy(own_block, {BufferKind::input, 0, per_rank});  // in place: the same memory, nothing to copy
  const Group everyone = Group::everyone(ranks, rank);
  const size_t chunks = direct_chunks(args, ranks);
  for (size_t k = 0; k < chunks && ranks > 1; ++k) {
    const Span within = balanced_part(per_rank, chunks, k);
    expose_to_every_peer(writer, everyone, result_tag(k), [&](int) { return region_of(BufferKind::input, within); });
    read_from_every_peer(writer, everyone, result_tag(k), [&](int owner) {
      return Region{BufferKind::output, size_t(owner) * per_rank + within.offset, within.count};
    });
  }
  return std::move(writer).finish();
}

}  // namespace cclab
