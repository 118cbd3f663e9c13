// Double binary tree allreduce (NCCL's tree algorithm), segmented and pipelined.
//
// Words used below:
// - tree:    the two trees of patterns/double_binary_tree.h. Tree t carries half t of the array:
//            reduced up to its root, then broadcast back down. A rank with two children in one
//            tree is a leaf in the other, so every rank moves about the same data and both
//            directions of the links are busy, while the depth stays log2(ranks).
// - segment: each half is cut into segments of at most `segment_bytes`; a segment is one message
//            per tree edge and direction. Going up, a rank reduces its children's partial sums of
//            segment j with its own input into its output and sends that to its parent (a leaf
//            sends its input); the root's last reduction completes the segment (and divides an
//            average). Going down, a rank receives the result into its output and forwards it to
//            its children. Segment j+1 follows one hop behind, so every edge carries data at once.
// - slot:    children's partial sums land in `segments_in_flight` rotating scratch slots; a slot
//            is reused only after the reduction that read it.
// - tag:     (tree, direction, segment): the two trees may link the same two ranks, either way.
//
// Per rank this sends, in each tree, its half up (except the root) and down once per child: 2x
// the array for a rank with two children in one tree (3/2 there plus 1/2 as a leaf of the
// other), less where an interior place has a single child (the roots, ranks near the end). The
// ring sends 2(N-1)/N: the tree spends more bandwidth to need 2·log2(N) steps instead of 2(N-1).
#include <array>

#include "algorithms/fragments.h"
#include "algorithms/regions.h"
#include "cclab/algorithm.h"
#include "patterns/double_binary_tree.h"
#include "patterns/message_segments.h"
#include "schedule/schedule_writer.h"

namespace cclab {

Schedule build_allreduce_tree(const Topology& topology, int rank, const CollectiveArgs& args) {
  const int ranks = topology.ranks();
  ScheduleWriter writer(args, ranks, rank);
  if (ranks == 1) {
    copy_input_to_output(writer, args);
    return std::move(writer).finish();
  }

  const std::array<Span, 2> halves = {balanced_part(args.count, 2, 0), balanced_part(args.count, 2, 1)};
  const size_t up = 0, down = 1;  // message directions: phase = 2 * tree + direction
  const MessageSegments segments(halves[0].count, args.segment_elements(), 4);
  ReceiveSlots slots(writer, args.segments_in_flight, segments.largest_segment());
  const std::array<TreeLinks, 2> trees = {double_binary_tree(ranks, rank, 0), double_binary_tree(ranks, rank, 1)};

  for (size_t segment = 0; segment < segments.segments(halves[0].count); ++segment) {
    for (size_t tree = 0; tree < 2; ++tree) {
      const Span half = halves[tree];
      if (segment >= segments.segments(half.count)) continue;
      const TreeLinks& links = trees[tree];
      const Region result = region_of(BufferKind::output, segments.segment(half, segment));
      const uint32_t up_tag = segments.tag({2 * tree + up}, segment);
      const uint32_t down_tag = segments.tag({2 * tree + down}, segment);

      Region partial = region_of(BufferKind::input, segments.segment(half, segment));
      for (size_t child = 0; child < links.children.size(); ++child) {
        const Region received = slots.next(result.count);
        writer.recv(links.children[child], up_tag, received);
        const bool completes = links.parent < 0 && child + 1 == links.children.size();
        writer.reduce(result, partial, received, completes);
        partial = result;
      }
      if (links.parent >= 0) {
        writer.send(links.parent, up_tag, partial);
        writer.recv(links.parent, down_tag, result);
      }
      for (int child : links.children) writer.send(child, down_tag, result);
    }
  }
  return std::move(writer).finish();
}

}  // namespace cclab
