// Binomial-tree reduce to any root, segmented and pipelined.
//
// Words used below:
// - tree:    ranks relabelled relative to the root (BinomialTree), so every root gets the same
//            shape. A rank waits for its children's partial results, shallowest subtree first (they
//            finish first), combines them with its own input in its output and sends that to its
//            parent; a leaf sends its input. The op must be commutative (every cclab op is):
//            contributions are combined in tree order, not rank order.
// - segment: the array is cut into segments of at most `segment_bytes`; a segment is one message
//            per tree edge, so a rank reduces segment j while segment j+1 is arriving.
// - slot:    children's segments land in `segments_in_flight` rotating scratch slots; a slot is
//            reused only after the reduction that read it.
// - average: divides once, in the root's last reduction of each element (finalize).
// - tag:     segment j uses tag j on every edge.
//
// Per rank this sends count·w, except the root, which sends nothing; the root receives
// count·w per child (up to ceil(log2 ranks) arrays).
#include "algorithms/fragments.h"
#include "cclab/algorithm.h"
#include "patterns/message_segments.h"
#include "schedule/schedule_writer.h"

namespace cclab {

Schedule build_reduce_binomial(const Topology& topology, int rank, const CollectiveArgs& args) {
  const int ranks = topology.ranks();
  ScheduleWriter writer(args, ranks, rank);
  if (ranks == 1) {
    copy_input_to_output(writer, args);
    return std::move(writer).finish();
  }

  const Group everyone = Group::everyone(ranks, rank);
  const size_t segments = pipeline_segments(args.count, args.segment_elements(), 1);
  ReceiveSlots slots(writer, args.segments_in_flight, balanced_part(args.count, segments, 0).count);
  for (size_t segment = 0; segment < segments; ++segment)
    binomial_reduce(writer, everyone, args.root, balanced_part(args.count, segments, segment), /*finalize=*/true, slots,
                    uint32_t(segment));
  return std::move(writer).finish();
}

}  // namespace cclab
