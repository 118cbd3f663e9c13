// Hierarchical allreduce: reduce inside each node, allreduce between node leaders, broadcast
// inside each node; the three stages pipelined over slices of the array.
//
// Words used below:
// - node, leader: ranks grouped by node (NodeLayout, from Topology::node_of_rank); a node's
//            lowest rank is its leader. Nodes may differ in size, and a node may be one rank.
// - slice:   the array is cut into slices of at most `segment_bytes`. Each slice goes through all
//            three stages on its own, and the executor runs whatever is ready, so while slice j
//            crosses between nodes, slice j+1 is being reduced inside the node and slice j-1
//            broadcast. Each stage has its own receive slots (`segments_in_flight` each), so a
//            stage waiting on the network never holds back another stage's receives.
// - stage 1: binomial reduce of the slice to the leader (BinomialTree rooted at local index 0).
// - stage 2: ring allreduce of the slice among the leaders, ordered by node: the slice is cut
//            into one chunk per node, reduce-scattered and allgathered (Ring).
// - stage 3: binomial broadcast of the slice from the leader.
// - average: divides once per element: in stage 2's last reduce-scatter step or, with a single
//            node, in the leader's last stage-1 reduction.
// - tag:     slice j uses the 2·L tags from j·2·L for L leaders: 1 for stage 1, L-1 + L-1 for
//            stage 2, 1 for stage 3.
//
// Per rank this sends count·w from a non-leader; a leader sends 2(L-1)/L·count·w to other nodes
// plus count·w to each of its tree children inside the node.
#include "algorithms/fragments.h"
#include "cclab/algorithm.h"
#include "patterns/hierarchy.h"
#include "patterns/message_segments.h"
#include "schedule/schedule_writer.h"

namespace cclab {

Schedule build_allreduce_hier_rab(const Topology& topology, int rank, const CollectiveArgs& args) {
  const int ranks = topology.ranks();
  ScheduleWriter writer(args, ranks, rank);
  if (ranks == 1) {
    copy_input_to_output(writer, args);
    return std::move(writer).finish();
  }

  const NodeLayout layout(topology.node_of_rank);
  const int node = layout.node_of(rank);
  const Group node_group{layout.members(node), layout.local_index(rank)};
  const Group leaders{layout.leaders(), node};
  const bool is_leader = node_group.position == 0;
  const size_t leader_count = size_t(leaders.size());

  const size_t tags_per_slice = 2 * leader_count;
  const uint32_t ring_tag_offset = 1, broadcast_tag_offset = uint32_t(1 + 2 * ring_tags(leaders.size()));
  const size_t slices = pipeline_segments(args.count, args.segment_elements(), tags_per_slice);
  const size_t largest_slice = balanced_part(args.count, slices, 0).count;

  ReceiveSlots node_slots(writer, args.segments_in_flight, largest_slice);
  ReceiveSlots ring_slots(writer, args.segments_in_flight, balanced_part(largest_slice, leader_count, 0).count);
  const bool one_node = leader_count == 1;
  for (size_t slice = 0; slice < slices; ++slice) {
    const Span span = balanced_part(args.count, slices, slice);
    const uint32_t first_tag = uint32_t(slice * tags_per_slice);
    const BufferKind node_result =
        binomial_reduce(writer, node_group, 0, span, /*finalize=*/one_node, node_slots, first_tag);
    if (is_leader) {
      // A leader alone on its node contributes its input; otherwise stage 1 left the node's sum
      // in its output. Either way the ring leaves the result in the output.
      ring_reduce_scatter(writer, leaders, span, node_result, /*finalize=*/true, ring_slots,
                          first_tag + ring_tag_offset);
      ring_allgather(writer, leaders, span, first_tag + ring_tag_offset + uint32_t(ring_tags(leaders.size())));
    }
    binomial_broadcast(writer, node_group, 0, span, BufferKind::output, first_tag + broadcast_tag_offset);
  }
  return std::move(writer).finish();
}

}  // namespace cclab
