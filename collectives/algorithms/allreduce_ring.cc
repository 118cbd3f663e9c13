// Ring allreduce: reduce-scatter then allgather around a ring, segmented and pipelined.
//
// Words used below (as in Gloo's ring):
// - chunk:   the array is cut into `ranks` chunks (balanced; some are empty when count < ranks).
//            Each ring step moves one chunk from every rank to its right neighbour.
// - segment: each chunk is cut into the same number of segments of at most `segment_bytes`;
//            a segment is the unit of one message, so the reduction of segment j overlaps with
//            the transfer of segment j+1.
// - step:    reduce-scatter has ranks-1 steps, then allgather has ranks-1 steps (see Ring).
// - slot:    received reduce-scatter segments land in one of `segments_in_flight` scratch slots;
//            a slot is reused only after the reduction that read it, so at most that many
//            receives are outstanding and the scratch stays small.
//
// Per rank this sends 2(ranks-1)/ranks of the array (exactly: the sum of the chunks it forwards).
#include <algorithm>
#include <optional>

#include "cclab/algorithm.h"
#include "cclab/error.h"
#include "patterns/partition.h"
#include "patterns/ring.h"

namespace cclab {
namespace {

using StepIndex = std::optional<uint32_t>;

std::vector<uint32_t> after(std::initializer_list<StepIndex> steps) {
  std::vector<uint32_t> deps;
  for (const StepIndex& step : steps)
    if (step) deps.push_back(*step);
  return deps;
}

// Every message tag must fit the 24-bit step field of the wire tag.
constexpr size_t kMaxTags = size_t{1} << 24;

}  // namespace

Schedule build_allreduce_ring(const Topology& topology, int rank, const CollectiveArgs& args) {
  const int ranks = topology.ranks();
  const size_t count = args.count;
  Schedule schedule;
  const Region whole_input{BufferKind::input, 0, count}, whole_output{BufferKind::output, 0, count};
  if (ranks == 1) {
    if (!args.inplace && count > 0) schedule.copy(whole_output, whole_input);
    return schedule;
  }

  const Ring ring{rank, ranks};
  const size_t steps = size_t(ranks - 1);
  const size_t largest_chunk = balanced_part(count, ranks, 0).count;
  size_t segments = std::max<size_t>(1, (largest_chunk + args.segment_elements() - 1) / args.segment_elements());
  segments = std::min(segments, kMaxTags / (2 * steps));  // tags: 2 phases x steps x segments
  const size_t largest_segment = balanced_part(largest_chunk, segments, 0).count;
  const size_t slots = std::max<size_t>(1, args.segments_in_flight);
  schedule.scratch_count = slots * largest_segment;

  auto segment_of = [&](int chunk, size_t segment) {
    return balanced_part(balanced_part(count, ranks, chunk), segments, segment);
  };
  auto region = [](BufferKind buffer, Span span) { return Region{buffer, span.offset, span.count}; };

  // Indices of earlier steps that later steps wait for, per segment.
  std::vector<StepIndex> rs_reduce(segments), rs_send(steps * segments), ag_recv(segments);
  std::vector<StepIndex> slot_reader(slots);
  size_t next_slot = 0;
  uint32_t tag = 0;

  for (size_t step = 0; step < steps; ++step) {
    const int send_chunk = ring.reduce_scatter_send_chunk(int(step));
    const int recv_chunk = ring.reduce_scatter_recv_chunk(int(step));
    for (size_t segment = 0; segment < segments; ++segment, ++tag) {
      const Span out = segment_of(send_chunk, segment), in = segment_of(recv_chunk, segment);
      // Step 0 forwards our own input; later steps forward the partial sum reduced one step ago.
      if (out.count > 0) {
        const BufferKind source = step == 0 ? BufferKind::input : BufferKind::output;
        rs_send[step * segments + segment] =
            schedule.send(ring.right(), tag, region(source, out), after({rs_reduce[segment]}));
      }
      if (in.count > 0) {
        const size_t slot = next_slot++ % slots;
        const Region scratch{BufferKind::scratch, slot * largest_segment, in.count};
        const uint32_t received = schedule.recv(ring.left(), tag, scratch, after({slot_reader[slot]}));
        const bool last = step + 1 == steps;
        rs_reduce[segment] = schedule.reduce(region(BufferKind::output, in), region(BufferKind::input, in), scratch,
                                             last, {received});
        slot_reader[slot] = rs_reduce[segment];
      } else {
        rs_reduce[segment].reset();
      }
    }
  }

  for (size_t step = 0; step < steps; ++step) {
    const int send_chunk = ring.allgather_send_chunk(int(step));
    const int recv_chunk = ring.allgather_recv_chunk(int(step));
    for (size_t segment = 0; segment < segments; ++segment, ++tag) {
      const Span out = segment_of(send_chunk, segment), in = segment_of(recv_chunk, segment);
      // Step 0 forwards the chunk this rank completed; later ones what arrived one step ago.
      const StepIndex ready = step == 0 ? rs_reduce[segment] : ag_recv[segment];
      if (out.count > 0) schedule.send(ring.right(), tag, region(BufferKind::output, out), after({ready}));
      if (in.count > 0) {
        // The region being overwritten was read by the reduce-scatter send of the same step
        // (in place, step 0 sends our input, which is this same memory).
        ag_recv[segment] = schedule.recv(ring.left(), tag, region(BufferKind::output, in),
                                         after({rs_send[step * segments + segment]}));
      } else {
        ag_recv[segment].reset();
      }
    }
  }
  return schedule;
}

}  // namespace cclab
