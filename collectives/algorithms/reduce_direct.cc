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
  auto block = [&](int owner) { return balanced_part(args.count, size_t(ranks), size_t(owner)); };
  const size_t chunks = direct_chunks(args, ranks);
  for (size_t k = 0; k < chunks; ++k) {
    auto chunk = [&](int owner) { return balanced_part(block(owner), chunks, k); };
    expose_to_every_peer(writer, ranks, rank, reduction_tag(k),
                         [&](int peer) { return region_of(BufferKind::input, chunk(peer)); });
    reduce_from_every_peer(writer, ranks, rank, reduction_tag(k), region_of(BufferKind::input, chunk(rank)),
                           region_of(BufferKind::output, chunk(rank)), /*finalize=*/true);
    if (rank != args.root) {
      writer.expose(args.root, result_tag(k), region_of(BufferKind::output, chunk(rank)));
      continue;
    }
    for (int step = 1; step < ranks; ++step) {
      const int owner = (rank + step) % ranks;
      writer.read(owner, result_tag(k), region_of(BufferKind::output, chunk(owner)));
    }
  }
  return std::move(writer).finish();
}

}  // namespace cclab
