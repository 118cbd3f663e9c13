// Direct reduce within a node (words as in direct_reads.h): as the first phase of the direct
// allreduce, rank r reduces block r from every rank's input where it lies into its output (the
// output of a rank other than the root is scratch to this collective); then the root reads the
// finished blocks from their owners. The reduction work is spread over all ranks, not left to
// the root. Per rank, peers read (N-1)/N of the array from its input and the root reads its block.
#include "algorithms/direct_reads.h"
#include "algorithms/fragments.h"
#include "algorithms/regions.h"

namespace cclab {

Schedule build_reduce_direct(const Topology& topology, int rank, const CollectiveArgs& args) {
  const int ranks = topology.ranks();
  ScheduleWriter writer(args, ranks, rank);
  if (ranks == 1) {
    copy_input_to_output(writer, args);
    return std::move(writer).finish();
  }
  const size_t chunks = direct_chunks(args, ranks);
  for (size_t k = 0; k < chunks; ++k) {
    reduce_own_chunk(writer, args, ranks, rank, k, chunks);
    if (rank != args.root) {
      writer.expose(args.root, result_tag(k),
                    region_of(BufferKind::output, chunk_of_block(args, ranks, rank, k, chunks)));
      continue;
    }
    read_from_every_peer(writer, Group::everyone(ranks, rank), result_tag(k), [&](int owner) {
      return region_of(BufferKind::output, chunk_of_block(args, ranks, owner, k, chunks));
    });
  }
  return std::move(writer).finish();
}

}  // namespace cclab
