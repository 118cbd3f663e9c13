// Ring reduce-scatter: rank r ends with block r of the array reduced over all ranks, segmented
// and pipelined.
//
// Words used below:
// - block:   the count/ranks elements each rank ends with (block r = output of rank r).
// - step:    ranks-1 steps around the ring (BlockRing): in step s rank r sends its partial sum of
//            block r-s-1 to its right neighbour and receives the partial sum of block r-s-2 from
//            its left one, adds its own input to it and sends that on in step s+1. In the last
//            step the block received is its own: that reduction completes it (and divides an
//            average), straight into the output.
// - segment: each block is cut into the same segments of at most `segment_bytes`; a segment is
//            one message. Each segment goes through all its steps before the next is listed, so
//            only the few partial sums in flight need memory (the output holds one block only):
//            segment j+1 still overlaps with segment j, through the dependencies.
// - slot:    a received partial sum lands in one of `segments_in_flight` (at least 2) rotating
//            scratch slots, is reduced there and sent on from there; a slot is reused only after
//            that send completed. With one slot a rank would wait for its own send to finish
//            before posting the receive its left neighbour's send waits for, around the ring.
// - tag:     (step, segment).
//
// Per rank this sends (ranks-1)·count/ranks elements, DESIGN 3.7's (N-1)/N·count.
#include <algorithm>

#include "algorithms/fragments.h"
#include "algorithms/regions.h"
#include "cclab/algorithm.h"
#include "patterns/block_ring.h"
#include "patterns/message_segments.h"
#include "schedule/schedule_writer.h"

namespace cclab {

Schedule build_reduce_scatter_ring(const Topology& topology, int rank, const CollectiveArgs& args) {
  const int ranks = topology.ranks();
  ScheduleWriter writer(args, ranks, rank);
  if (ranks == 1) {
    copy_input_to_output(writer, args);
    return std::move(writer).finish();
  }

  const size_t block = args.count / size_t(ranks), steps = size_t(ranks - 1);
  const BlockRing ring{Ring{rank, ranks}};
  const MessageSegments segments(block, args.segment_elements(), steps);
  ReceiveSlots slots(writer, std::max<size_t>(2, args.segments_in_flight), segments.largest_segment());
  const auto input_segment = [&](int block_index, size_t segment) {
    return region_of(BufferKind::input, segments.segment({size_t(block_index) * block, block}, segment));
  };

  for (size_t segment = 0; segment < segments.segments(block); ++segment) {
    Region forwarded = input_segment(ring.reduce_scatter_send_block(0), segment);
    for (size_t step = 0; step < steps; ++step) {
      const uint32_t tag = segments.tag({step}, segment);
      writer.send(ring.ring.right(), tag, forwarded);
      const Region mine = input_segment(ring.reduce_scatter_recv_block(int(step)), segment);
      const Region received = slots.next(mine.count);
      writer.recv(ring.ring.left(), tag, received);
      if (step + 1 < steps) {
        writer.reduce(received, mine, received, false);  // the partial sum to send on next step
        forwarded = received;
      } else {
        writer.reduce(region_of(BufferKind::output, segments.segment({0, block}, segment)), mine, received, true);
      }
    }
  }
  return std::move(writer).finish();
}

}  // namespace cclab
