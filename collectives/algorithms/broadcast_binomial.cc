// Binomial-tree broadcast from any root, segmented and pipelined.
//
// Words used below:
// - tree:    ranks relabelled relative to the root (BinomialTree), so every root gets the same
//            shape; a rank receives from its parent and forwards to its children, deepest subtree
//            first. The root has ceil(log2 ranks) children and no path is longer than that.
// - segment: the array is cut into segments of at most `segment_bytes`; a segment is one message
//            per tree edge and is forwarded as soon as it arrived, so segment j+1 travels down the
//            upper levels while segment j is in the lower ones.
// - tag:     segment j uses tag j on every edge.
//
// Per rank this sends count·w per child: up to ceil(log2 ranks) copies of the array at the root.
#include "algorithms/fragments.h"
#include "cclab/algorithm.h"
#include "patterns/message_segments.h"
#include "schedule/schedule_writer.h"

namespace cclab {

Schedule build_broadcast_binomial(const Topology& topology, int rank, const CollectiveArgs& args) {
  const int ranks = topology.ranks();
  ScheduleWriter writer(args, ranks, rank);
  if (rank == args.root) copy_input_to_output(writer, args);

  const Group everyone = Group::everyone(ranks, rank);
  const size_t segments = pipeline_segments(args.count, args.segment_elements(), 1);
  for (size_t segment = 0; segment < segments; ++segment)
    binomial_broadcast(writer, everyone, args.root, balanced_part(args.count, segments, segment), BufferKind::input,
                       uint32_t(segment));
  return std::move(writer).finish();
}

}  // namespace cclab
