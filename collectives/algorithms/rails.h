// The stage between nodes that hier_rail and hier_direct share: after the node stage left each
// piece of a slice with one rank per node (RailPiece), those ranks, one per node, form a rail and
// ring-allreduce the piece among themselves.
#pragma once

#include <cstdint>
#include <vector>

#include "patterns/hierarchy.h"
#include "schedule/schedule_writer.h"

namespace cclab {

/// For every piece this rank holds on its node, a ring reduce-scatter (finalized) and allgather of
/// it among its holders on every node; this rank's contribution is in `contribution`, the result
/// lands in the output. Piece p uses 2·ring_tags(nodes) tags from first_tag + p·2·ring_tags(nodes).
void allreduce_rails(ScheduleWriter& writer, const NodeLayout& layout, int rank, const std::vector<RailPiece>& pieces,
                     BufferKind contribution, ReceiveSlots& rail_slots, uint32_t first_tag);

}  // namespace cclab
