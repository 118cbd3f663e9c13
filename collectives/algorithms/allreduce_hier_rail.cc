// Hierarchical "rail" allreduce: ring reduce-scatter inside each node, allreduce between nodes
// along rails, ring allgather inside each node; the three stages pipelined over slices.
//
// Words used below:
// - node:    ranks grouped by node (NodeLayout, from Topology::node_of_rank), k_n ranks on node
//            n, ordered by rank; nodes may differ in size, and a node may be one rank.
// - slice:   the array is cut into slices; each goes through all three stages on its own, and the
//            executor runs whatever is ready, so slice j crosses between nodes while slice j+1 is
//            reduce-scattered inside the node. Slices hold `segment_bytes` per rank of the smallest
//            node, so no intra-node message exceeds `segment_bytes` there. Each stage has its own
//            receive slots (`segments_in_flight` each).
// - chunk:   node n cuts a slice into k_n balanced chunks; its ring reduce-scatter (stage 1)
//            leaves chunk c, reduced over the node, on local index c - 1 (Ring's convention).
// - rail, piece: (RailPiece) stage 2 works on the common refinement of every node's chunks. Each
//            piece lies in one chunk per node and so is held by exactly one rank per node; those
//            ranks, one per node in node order, are the piece's rail and ring-allreduce it. With
//            equal nodes the pieces are the chunks and rail i is local index i on every node, the
//            classic rails. With unequal nodes a rank of a smaller node owns a larger chunk and
//            joins one rail per piece of it, so no rail lacks a node, no rank is idle, and every
//            rank's inter-node traffic stays proportional to its share of its node's chunk. A node
//            of one rank skips stage 1 and contributes its input directly.
// - stage 3: ring allgather of the chunks inside the node, each chunk sent once its pieces' rails
//            finished.
// - average: divides once per element: in the rail ring's last reduce-scatter step or, with a
//            single node, in the node's last reduce-scatter step.
// - tag:     slice j has a block of tags: K-1 for stage 1 (K = largest node), 2(N-1) per piece
//            (at most max_rail_pieces of them, N nodes), K-1 for stage 3.
//
// Per rank on a node of k ranks this sends 2(k-1)/k·count·w inside the node plus
// 2(N-1)/N·count/k·w between nodes (exactly, up to chunk rounding).
#include "algorithms/fragments.h"
#include "algorithms/rails.h"
#include "cclab/algorithm.h"
#include "patterns/hierarchy.h"
#include "patterns/message_segments.h"
#include "schedule/schedule_writer.h"

namespace cclab {

Schedule build_allreduce_hier_rail(const Topology& topology, int rank, const CollectiveArgs& args) {
  const int ranks = topology.ranks();
  ScheduleWriter writer(args, ranks, rank);
  if (ranks == 1) {
    copy_input_to_output(writer, args);
    return std::move(writer).finish();
  }

  const NodeLayout layout(topology.node_of_rank);
  const int node = layout.node_of(rank), local_index = layout.local_index(rank);
  const Group node_group{layout.members(node), local_index};
  const std::vector<int> node_sizes = layout.node_sizes();
  const int nodes = layout.nodes();

  const size_t node_ring_tags = ring_tags(layout.largest_node_size());
  const size_t rail_tags_per_piece = 2 * ring_tags(nodes);
  const size_t tags_per_slice = 2 * node_ring_tags + max_rail_pieces(node_sizes) * rail_tags_per_piece;
  const size_t slice_elements = args.segment_elements() * size_t(layout.smallest_node_size());
  const size_t slices = pipeline_segments(args.count, slice_elements, tags_per_slice);
  const size_t largest_chunk =
      balanced_part(balanced_part(args.count, slices, 0).count, size_t(node_group.size()), 0).count;

  ReceiveSlots node_slots(writer, args.segments_in_flight, largest_chunk);
  ReceiveSlots rail_slots(writer, args.segments_in_flight, balanced_part(largest_chunk, size_t(nodes), 0).count);
  // A node of one rank has nothing to reduce-scatter: its input is its chunk's contribution.
  const BufferKind chunk_holder = node_group.size() == 1 ? BufferKind::input : BufferKind::output;
  for (size_t slice = 0; slice < slices; ++slice) {
    const Span span = balanced_part(args.count, slices, slice);
    const uint32_t first_tag = uint32_t(slice * tags_per_slice);
    const uint32_t first_rail_tag = first_tag + uint32_t(node_ring_tags);
    const uint32_t allgather_tag = first_rail_tag + uint32_t(max_rail_pieces(node_sizes) * rail_tags_per_piece);

    ring_reduce_scatter(writer, node_group, span, BufferKind::input, /*finalize=*/nodes == 1, node_slots, first_tag);
    allreduce_rails(writer, layout, rank, rail_pieces(span, node_sizes), chunk_holder, rail_slots, first_rail_tag);
    ring_allgather(writer, node_group, span, allgather_tag);
  }
  return std::move(writer).finish();
}

}  // namespace cclab
