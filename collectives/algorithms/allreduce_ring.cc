// Ring allreduce: reduce-scatter then allgather around a ring, segmented and pipelined.
//
// Words used below (as in Gloo's ring):
// - slice:   the array is cut into slices of about `ranks` x `segment_bytes`; each slice goes
//            through the whole ring on its own, so the reduction of one slice's chunk overlaps
//            with the transfer of the next slice's.
// - chunk:   a slice is cut into `ranks` chunks (balanced; some are empty when it is small). Each
//            ring step moves one chunk, at most a segment, from every rank to its right neighbour.
// - step:    reduce-scatter has ranks-1 steps, then allgather has ranks-1 steps (see Ring and
//            algorithms/fragments.h, shared with the hierarchical algorithms).
// - slot:    received reduce-scatter chunks land in one of `segments_in_flight` scratch slots; a
//            slot is reused only after the reduction that read it, which bounds the receives
//            outstanding and keeps the scratch small.
//
// Per rank this sends 2(ranks-1)/ranks of the array (exactly: the sum of the chunks it forwards).
#include "algorithms/fragments.h"
#include "cclab/algorithm.h"
#include "patterns/message_segments.h"
#include "schedule/schedule_writer.h"

namespace cclab {

Schedule build_allreduce_ring(const Topology& topology, int rank, const CollectiveArgs& args) {
  const int ranks = topology.ranks();
  ScheduleWriter writer(args, ranks, rank);
  if (ranks == 1) {
    copy_input_to_output(writer, args);
    return std::move(writer).finish();
  }
  const Group everyone = Group::everyone(ranks, rank);
  const size_t tags_per_slice = 2 * ring_tags(ranks);
  const size_t slices = pipeline_segments(args.count, args.segment_elements() * size_t(ranks), tags_per_slice);
  const size_t largest_chunk = balanced_part(balanced_part(args.count, slices, 0).count, size_t(ranks), 0).count;
  ReceiveSlots slots(writer, args.segments_in_flight, largest_chunk);
  for (size_t slice = 0; slice < slices; ++slice) {
    const Span span = balanced_part(args.count, slices, slice);
    const uint32_t first_tag = uint32_t(slice * tags_per_slice);
    ring_reduce_scatter(writer, everyone, span, BufferKind::input, /*finalize=*/true, slots, first_tag);
    ring_allgather(writer, everyone, span, first_tag + uint32_t(ring_tags(ranks)));
  }
  return std::move(writer).finish();
}

}  // namespace cclab
