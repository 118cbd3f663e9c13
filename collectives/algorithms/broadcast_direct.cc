// Direct broadcast within a node (words as in direct_reads.h, the whole array being the root's
// one block): every rank reads the root's input where it lies, chunk by chunk, straight into its
// output. The root's memory is read N-1 times: count·w per reader, the root "sending" the array
// to each (DESIGN 3.7 counts what a peer reads as sent by the owner). The root copies its own
// output after exposing every chunk, so the readers copy while it does.
#include "algorithms/direct_reads.h"
#include "algorithms/fragments.h"
#include "algorithms/regions.h"

namespace cclab {

Schedule build_broadcast_direct(const Topology& topology, int rank, const CollectiveArgs& args) {
  const int ranks = topology.ranks();
  ScheduleWriter writer(args, ranks, rank);
  const size_t chunks = direct_chunks(args, 1);
  for (size_t k = 0; k < chunks && ranks > 1; ++k) {
    const Span chunk = balanced_part(args.count, chunks, k);
    if (rank == args.root)
      expose_to_every_peer(writer, Group::everyone(ranks, rank), result_tag(k),
                           [&](int) { return region_of(BufferKind::input, chunk); });
    else
      writer.read(args.root, result_tag(k), region_of(BufferKind::output, chunk));
  }
  if (rank == args.root) copy_input_to_output(writer, args);
  return std::move(writer).finish();
}

}  // namespace cclab
