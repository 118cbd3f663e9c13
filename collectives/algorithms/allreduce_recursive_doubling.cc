// Recursive doubling allreduce: log2(ranks) steps, each exchanging the whole array. For small
// arrays, where the number of steps (latency) matters more than the bytes moved.
//
// Words used below:
// - fold:    for a rank count that is not a power of two, MPICH's fold (PowerOfTwoFold): each
//            extra even rank 2i sends its input to rank 2i+1, which reduces it into its own, and
//            waits; the power-of-two core does the steps; at the end 2i+1 sends 2i the result.
// - step:    in the step at distance d, core member m sends its partial sum to member m ^ d and
//            reduces the one it receives into its output. After the steps at distances 1, 2, 4,
//            ... every member holds the sum of every input; the last step completes (and for an
//            average divides) every element.
// - segment: the array is cut into segments of at most `segment_bytes`, each a message of its
//            own, so segment j can be in the next step while segment j+1 is still in this one.
// - slot:    received segments land in `segments_in_flight` rotating scratch slots; a slot is
//            reused only after the reduction that read it.
// - tag:     (phase, segment) with phases fold, each step, unfold.
//
// Per core rank this sends log2(core)·count elements, plus count once more for a rank that
// absorbed an extra one; an extra rank sends count.
#include "algorithms/fragments.h"
#include "algorithms/power_of_two_fold.h"
#include "algorithms/segmented_messages.h"
#include "cclab/algorithm.h"
#include "patterns/message_segments.h"
#include "patterns/recursive.h"
#include "schedule/schedule_writer.h"

namespace cclab {

Schedule build_allreduce_recursive_doubling(const Topology& topology, int rank, const CollectiveArgs& args) {
  const int ranks = topology.ranks();
  ScheduleWriter writer(args, ranks, rank);
  if (ranks == 1) {
    copy_input_to_output(writer, args);
    return std::move(writer).finish();
  }

  const Region input{BufferKind::input, 0, args.count}, output{BufferKind::output, 0, args.count};
  const PowerOfTwoFold fold{ranks};
  const std::vector<int> distances = doubling_distances(fold.core_size());
  const size_t fold_phase = 0, unfold_phase = distances.size() + 1;
  const MessageSegments segments(args.count, args.segment_elements(), distances.size() + 2);
  ReceiveSlots slots(writer, args.segments_in_flight, segments.largest_segment());

  const std::optional<Region> contribution =
      fold_in(writer, segments, slots, fold, rank, fold_phase, unfold_phase, input, output);
  if (!contribution) return std::move(writer).finish();  // this rank sat out the fold
  Region partial = *contribution;
  const int member = fold.member_of(rank);
  for (size_t step = 0; step < distances.size(); ++step) {
    const int partner = fold.rank_of(member ^ distances[step]);
    send_segments(writer, segments, partner, {step + 1}, partial);
    recv_reduce_segments(writer, segments, slots, partner, {step + 1}, output, partial, step + 1 == distances.size());
    partial = output;
  }
  fold_out(writer, segments, fold, rank, unfold_phase, output);
  return std::move(writer).finish();
}

}  // namespace cclab
