// Pieces of schedules that several algorithms share: a binomial broadcast or reduction and a ring
// reduce-scatter or allgather, each over one span of the array and any group of ranks (all ranks,
// the ranks of one node, the leaders of all nodes, one rail). They write through a
// ScheduleWriter, so the dependencies between them and the steps around them follow from memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "cclab/algorithm.h"
#include "patterns/partition.h"
#include "schedule/schedule_writer.h"

namespace cclab {

/// The ranks one stage runs over, in the order its pattern numbers them (tree or ring
/// positions), and this rank's position among them.
struct Group {
  std::vector<int> members;
  int position = 0;

  int size() const { return int(members.size()); }
  int rank_at(int member) const { return members[size_t(member)]; }
  /// All `ranks` ranks in rank order.
  static Group everyone(int ranks, int rank);
};

/// Binomial broadcast of `span` from the member at position `root`: the root sends from its
/// `root_source` (input or output), every other member receives into its output and forwards
/// from there, deepest subtree first. Uses one tag (one message per tree edge).
void binomial_broadcast(ScheduleWriter& writer, const Group& group, int root, Span span, BufferKind root_source,
                        uint32_t tag);

/// Binomial reduction of `span` to the member at position `root`. A member combines its input
/// with its children's partial results (received into `slots`, shallowest subtree first, as they
/// tend to arrive) in its output and sends that to its parent; a leaf sends its input as is.
/// Members are combined in tree order, not rank order: the operation must be commutative, as
/// every op cclab offers is. The root's last reduction of each element has `finalize` set.
/// Returns where the root's result is: its output, or its input when the group has one member.
/// Uses one tag (one message per tree edge).
BufferKind binomial_reduce(ScheduleWriter& writer, const Group& group, int root, Span span, bool finalize,
                           ReceiveSlots& slots, uint32_t tag);

/// Ring reduce-scatter of `span` cut into group.size() balanced chunks (see Ring): member p ends
/// with chunk Ring{p, size}.chunk(1), reduced over the group, in its output. Its own contribution
/// is read from `contribution` (input, or output when an earlier stage left it there); received
/// chunks land in `slots`; the last reduction of each element has `finalize` set.
/// Uses tags [first_tag, first_tag + ring_tags(group.size())).
void ring_reduce_scatter(ScheduleWriter& writer, const Group& group, Span span, BufferKind contribution, bool finalize,
                         ReceiveSlots& slots, uint32_t first_tag);

/// Ring allgather after ring_reduce_scatter of the same span: every member ends with every chunk
/// in its output. Uses tags [first_tag, first_tag + ring_tags(group.size())).
void ring_allgather(ScheduleWriter& writer, const Group& group, Span span, uint32_t first_tag);

/// Tags one ring phase takes: one per step.
inline size_t ring_tags(int group_size) { return size_t(group_size - 1); }

/// output = input over the whole array, nothing in place (one buffer). A broadcast root starts
/// with it, and it is all that any collective does on a single rank.
void copy_input_to_output(ScheduleWriter& writer, const CollectiveArgs& args);

}  // namespace cclab
