// One-shot allreduce within a node (words as in direct_reads.h, the whole array being every
// rank's block): every rank reduces the whole array from every rank's input where it lies, chunk
// by chunk, straight into its output. Unlike the direct (two-shot) allreduce nobody waits for a
// peer's result and no rank reads lines a peer just wrote: the inputs are only read. The price is
// N-1 reductions of the whole array per rank instead of one of a block: for small N and arrays up
// to a few MiB, where the second phase's wait and the transfer of freshly written lines cost more.
//
// Every rank folds the inputs in rank order, ((in_0 op in_1) op in_2) ..., so every rank gets the
// same bits (a op b = b op a exactly, and the association is the same everywhere); rank r >= 2
// starts from a copy of rank 0's chunk and adds its own input in its turn. In place, a rank folds
// into scratch and copies the result over its input once its peers have read that: folding into
// the input itself would wait for the peers' reads, which wait for their own folds.
//
// Per rank, peers read the whole array from its input: (N-1) count·w (DESIGN 3.7 counts what a
// peer reads as sent by the owner), against the two-shot's 2(N-1)/N.
#include "algorithms/direct_reads.h"
#include "algorithms/fragments.h"
#include "algorithms/regions.h"

namespace cclab {

Schedule build_allreduce_oneshot(const Topology& topology, int rank, const CollectiveArgs& args) {
  const int ranks = topology.ranks();
  ScheduleWriter writer(args, ranks, rank);
  if (ranks == 1) {
    copy_input_to_output(writer, args);
    return std::move(writer).finish();
  }
  const size_t chunks = direct_chunks(args, 1);
  const size_t folded = args.inplace ? writer.reserve_scratch(args.count) : 0;
  for (size_t k = 0; k < chunks; ++k) {
    const Span chunk = balanced_part(args.count, chunks, k);
    const Region own = region_of(BufferKind::input, chunk);
    const Region target = args.inplace ? Region{BufferKind::scratch, folded + chunk.offset, chunk.count}
                                       : region_of(BufferKind::output, chunk);
    expose_to_every_peer(writer, Group::everyone(ranks, rank), reduction_tag(k), [&](int) { return own; });
    if (rank < 2) {
      writer.read_reduce(1 - rank, reduction_tag(k), target, own, /*finalize=*/ranks == 2);
    } else {
      writer.read(0, reduction_tag(k), target);
      writer.read_reduce(1, reduction_tag(k), target, target, false);
    }
    for (int next = 2; next < ranks; ++next) {
      const bool last = next == ranks - 1;
      if (next == rank)
        writer.reduce(target, target, own, last);
      else
        writer.read_reduce(next, reduction_tag(k), target, target, last);
    }
    if (args.inplace) writer.copy(region_of(BufferKind::output, chunk), target);
  }
  return std::move(writer).finish();
}

}  // namespace cclab
