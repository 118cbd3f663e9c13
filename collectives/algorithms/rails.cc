#include "algorithms/rails.h"

#include "algorithms/fragments.h"

namespace cclab {

void allreduce_rails(ScheduleWriter& writer, const NodeLayout& layout, int rank, const std::vector<RailPiece>& pieces,
                     BufferKind contribution, ReceiveSlots& rail_slots, uint32_t first_tag) {
  const int nodes = layout.nodes(), node = layout.node_of(rank), local_index = layout.local_index(rank);
  const auto tags_per_piece = uint32_t(2 * ring_tags(nodes));
  for (size_t piece = 0; piece < pieces.size() && nodes > 1; ++piece) {
    if (pieces[piece].owner[size_t(node)] != local_index) continue;
    Group rail{{}, node};
    for (int n = 0; n < nodes; ++n) rail.members.push_back(layout.members(n)[size_t(pieces[piece].owner[size_t(n)])]);
    const uint32_t piece_tag = first_tag + uint32_t(piece) * tags_per_piece;
    ring_reduce_scatter(writer, rail, pieces[piece].span, contribution, /*finalize=*/true, rail_slots, piece_tag);
    ring_allgather(writer, rail, pieces[piece].span, piece_tag + uint32_t(ring_tags(nodes)));
  }
}

}  // namespace cclab
