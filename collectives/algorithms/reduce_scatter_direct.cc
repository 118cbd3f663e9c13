// Direct reduce-scatter within a node (words as in direct_reads.h): rank r reduces block r of
// the array from every rank's input where it lies, chunk by chunk, into its output. Per rank,
// peers read (N-1)/N of the array from its input, as the ring sends (DESIGN 3.7).
#include "algorithms/direct_reads.h"
#include "algorithms/fragments.h"
#include "algorithms/regions.h"

namespace cclab {

Schedule build_reduce_scatter_direct(const Topology& topology, int rank, const CollectiveArgs& args) {
  const int ranks = topology.ranks();
  ScheduleWriter writer(args, ranks, rank);
  if (ranks == 1) {
    copy_input_to_output(writer, args);
    return std::move(writer).finish();
  }
  const size_t per_rank = args.count / size_t(ranks);
  const Group everyone = Group::everyone(ranks, rank);
  const size_t chunks = direct_chunks(args, ranks);
  for (size_t k = 0; k < chunks; ++k) {
    const Span within = balanced_part(per_rank, chunks, k);  // of a block
    auto input_chunk = [&](int owner) {
      return Region{BufferKind::input, size_t(owner) * per_rank + within.offset, within.count};
    };
    expose_to_every_peer(writer, everyone, reduction_tag(k), input_chunk);
    reduce_from_every_peer(writer, everyone, reduction_tag(k), input_chunk(rank),
                           region_of(BufferKind::output, within), /*finalize=*/true);
  }
  return std::move(writer).finish();
}

}  // namespace cclab
