// Hierarchical allreduce with direct node stages: inside each node a direct reduce-scatter (each
// rank reduces its chunk from its node peers' inputs where they lie), between nodes a ring
// allreduce per rail, inside each node a direct allgather (each rank reads the finished chunks
// from their owners); the stages pipelined over slices. hier_rail's shape, with the node's ring
// steps (a copy into the receiver, then the reduction) replaced by peer reads (direct_reads.h).
//
// Words used below:
// - node:    ranks grouped by node (NodeLayout), k_n ranks on node n; nodes may differ in size,
//            and a node may be one rank (it contributes its input to the rails directly).
// - slice:   the array is cut into at most kMostDirectChunks slices of about `segment_bytes` per
//            rank of the smallest node; slice j's peer reads use reduction_tag(j) and
//            result_tag(j), so the executor runs slice j's rail stage while slice j+1 is read.
// - chunk:   node n cuts a slice into k_n balanced chunks; local index c reduces chunk c.
// - rail, piece: as in hier_rail (RailPiece), with chunk c held by local index c.
// - average: divides once per element: in the rail ring's last reduce-scatter step or, with a
//            single node, in the node stage's last reduction.
// - tags:    peer reads below kPeerReadTags; the rails' sends from kPeerReadTags up, 2(N-1) per
//            piece, so none meets a peer read's tag even where reads go through the transport.
//
// Per rank on a node of k ranks, its node peers read 2(k-1)/k·count·w of its memory, and it
// sends 2(N-1)/N·count/k·w between nodes (up to chunk rounding), as hier_rail sends.
#include <algorithm>

#include "algorithms/direct_reads.h"
#include "algorithms/fragments.h"
#include "algorithms/rails.h"
#include "algorithms/regions.h"
#include "patterns/hierarchy.h"
#include "patterns/message_segments.h"

namespace cclab {

Schedule build_allreduce_hier_direct(const Topology& topology, int rank, const CollectiveArgs& args) {
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
  const auto node_ranks = size_t(node_group.size());

  const size_t rail_tags_per_piece = 2 * ring_tags(nodes);
  const size_t rail_tags_per_slice = max_rail_pieces(node_sizes) * rail_tags_per_piece;
  const size_t slice_elements = args.segment_elements() * size_t(layout.smallest_node_size());
  const size_t slices = std::min(pipeline_segments(args.count, slice_elements, rail_tags_per_slice), kMostDirectChunks);
  const size_t largest_chunk = balanced_part(balanced_part(args.count, slices, 0).count, node_ranks, 0).count;
  ReceiveSlots rail_slots(writer, args.segments_in_flight, balanced_part(largest_chunk, size_t(nodes), 0).count);
  const BufferKind chunk_holder = node_ranks == 1 ? BufferKind::input : BufferKind::output;
  auto owned_by_chunk_index = [](int chunk, int) { return chunk; };

  for (size_t slice = 0; slice < slices; ++slice) {
    const Span span = balanced_part(args.count, slices, slice);
    auto chunk = [&](int position) { return balanced_part(span, node_ranks, size_t(position)); };

    expose_to_every_peer(writer, node_group, reduction_tag(slice),
                         [&](int peer) { return region_of(BufferKind::input, chunk(peer)); });
    reduce_from_every_peer(writer, node_group, reduction_tag(slice), region_of(BufferKind::input, chunk(local_index)),
                           region_of(BufferKind::output, chunk(local_index)), /*finalize=*/nodes == 1);

    const auto first_rail_tag = uint32_t(kPeerReadTags + slice * rail_tags_per_slice);
    allreduce_rails(writer, layout, rank, rail_pieces(span, node_sizes, owned_by_chunk_index), chunk_holder,
                    rail_slots, first_rail_tag);

    const Region own_result = region_of(BufferKind::output, chunk(local_index));
    expose_to_every_peer(writer, node_group, result_tag(slice), [&](int) { return own_result; });
    read_from_every_peer(writer, node_group, result_tag(slice),
                         [&](int owner) { return region_of(BufferKind::output, chunk(owner)); });
  }
  return std::move(writer).finish();
}

}  // namespace cclab
