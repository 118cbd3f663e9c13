// Ring allgather: every rank ends with every rank's block, segmented and pipelined.
//
// Words used below:
// - block:   the count/ranks elements each rank contributes (block r = input of rank r).
// - step:    ranks-1 steps around the ring (BlockRing): in step s rank r sends block r-s to its
//            right neighbour (its own input in step 0, then the block received one step ago)
//            and receives block r-s-1 from its left one, straight into its output.
// - segment: each block is cut into the same segments of at most `segment_bytes`; a segment is
//            one message, so segment j moves on to the next rank while segment j+1 arrives.
// - tag:     (step, segment).
//
// Per rank this sends (ranks-1)·count/ranks elements, DESIGN 3.7's (N-1)/N·count.
#include "algorithms/fragments.h"
#include "algorithms/regions.h"
#include "cclab/algorithm.h"
#include "patterns/block_ring.h"
#include "patterns/message_segments.h"
#include "schedule/schedule_writer.h"

namespace cclab {

Schedule build_allgather_ring(const Topology& topology, int rank, const CollectiveArgs& args) {
  const int ranks = topology.ranks();
  ScheduleWriter writer(args, ranks, rank);
  if (ranks == 1) {
    copy_input_to_output(writer, args);
    return std::move(writer).finish();
  }

  const size_t block = args.count / size_t(ranks), steps = size_t(ranks - 1);
  const BlockRing ring{Ring{rank, ranks}};
  const MessageSegments segments(block, args.segment_elements(), steps);
  const auto output_segment = [&](int block_index, size_t segment) {
    return region_of(BufferKind::output, segments.segment({size_t(block_index) * block, block}, segment));
  };

  // In place the input already is this rank's block of the output.
  if (!args.inplace)
    writer.copy(region_of(BufferKind::output, {size_t(rank) * block, block}), {BufferKind::input, 0, block});
  for (size_t step = 0; step < steps; ++step) {
    for (size_t segment = 0; segment < segments.segments(block); ++segment) {
      const uint32_t tag = segments.tag({step}, segment);
      // Step 0 sends this rank's own block from the input, not waiting for the copy.
      const Region sent = step == 0 ? region_of(BufferKind::input, segments.segment({0, block}, segment))
                                    : output_segment(ring.allgather_send_block(int(step)), segment);
      writer.send(ring.ring.right(), tag, sent);
      writer.recv(ring.ring.left(), tag, output_segment(ring.allgather_recv_block(int(step)), segment));
    }
  }
  return std::move(writer).finish();
}

}  // namespace cclab
