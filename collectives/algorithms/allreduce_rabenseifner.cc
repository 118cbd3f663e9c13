// Rabenseifner's allreduce: recursive-halving reduce-scatter, then recursive-doubling allgather.
// Bandwidth-optimal like the ring (2(N-1)/N of the array per rank for a power-of-two N) in
// 2·log2(N) steps instead of 2(N-1).
//
// Words used below:
// - fold:    for a rank count that is not a power of two, MPICH's fold (PowerOfTwoFold): each
//            extra even rank 2i sends its whole input to rank 2i+1, which reduces it into its
//            own, and waits; the power-of-two core runs both phases; at the end 2i+1 sends 2i the
//            whole result.
// - block:   the array is cut into one balanced block per core member (empty when count is
//            smaller than the core); member m ends the reduce-scatter owning block m. A group of
//            consecutive members stands for the contiguous elements of their blocks.
// - step:    reduce-scatter steps at distances core/2, ..., 2, 1: member m sends its partial sum
//            of the blocks of aligned_group(m ^ d, d) to m ^ d and reduces what m ^ d sends for
//            aligned_group(m, d) into its output, so each step halves what m keeps; the last
//            step completes (and for an average divides) block m. Allgather steps at distances
//            1, 2, ..., core/2 mirror this, receiving straight into the output.
// - segment: every message is cut into segments of at most `segment_bytes`; a segment of the
//            next step waits only for the segments of this one that it overlaps.
// - slot:    received reduce-scatter segments land in `segments_in_flight` rotating scratch
//            slots; a slot is reused only after the reduction that read it.
// - tag:     (phase, segment) with phases fold, each reduce-scatter step, each allgather step,
//            unfold.
#include "algorithms/fragments.h"
#include "algorithms/power_of_two_fold.h"
#include "algorithms/regions.h"
#include "algorithms/segmented_messages.h"
#include "cclab/algorithm.h"
#include "patterns/message_segments.h"
#include "patterns/recursive.h"
#include "schedule/schedule_writer.h"

namespace cclab {

Schedule build_allreduce_rabenseifner(const Topology& topology, int rank, const CollectiveArgs& args) {
  const int ranks = topology.ranks();
  ScheduleWriter writer(args, ranks, rank);
  if (ranks == 1) {
    copy_input_to_output(writer, args);
    return std::move(writer).finish();
  }

  const Region input{BufferKind::input, 0, args.count}, output{BufferKind::output, 0, args.count};
  const PowerOfTwoFold fold{ranks};
  const size_t core = size_t(fold.core_size());
  const std::vector<int> halving = halving_distances(fold.core_size());
  const std::vector<int> doubling = doubling_distances(fold.core_size());
  const size_t fold_phase = 0, first_halving_phase = 1, first_doubling_phase = 1 + halving.size();
  const size_t unfold_phase = first_doubling_phase + doubling.size();
  const MessageSegments segments(args.count, args.segment_elements(), unfold_phase + 1);
  ReceiveSlots slots(writer, args.segments_in_flight, segments.largest_segment());

  const std::optional<Region> contribution =
      fold_in(writer, segments, slots, fold, rank, fold_phase, unfold_phase, input, output);
  if (!contribution) return std::move(writer).finish();  // this rank sat out the fold
  Region partial = *contribution;

  // The elements of the blocks of a group of consecutive members.
  const auto elements_of = [&](MemberRange group) {
    const Span first = balanced_part(args.count, core, size_t(group.first));
    const Span last = balanced_part(args.count, core, size_t(group.first + group.count - 1));
    return Span{first.offset, last.offset + last.count - first.offset};
  };
  const int member = fold.member_of(rank);
  for (size_t step = 0; step < halving.size(); ++step) {
    const int distance = halving[step], partner = member ^ distance;
    const Span given = elements_of(aligned_group(partner, distance));
    const Span kept = elements_of(aligned_group(member, distance));
    const MessageId id{first_halving_phase + step};
    send_segments(writer, segments, fold.rank_of(partner), id, subregion(partial, given));
    recv_reduce_segments(writer, segments, slots, fold.rank_of(partner), id, subregion(output, kept),
                         subregion(partial, kept), step + 1 == halving.size());
    partial = output;
  }
  for (size_t step = 0; step < doubling.size(); ++step) {
    const int distance = doubling[step], partner = member ^ distance;
    const MessageId id{first_doubling_phase + step};
    send_segments(writer, segments, fold.rank_of(partner), id,
                  subregion(output, elements_of(aligned_group(member, distance))));
    recv_segments(writer, segments, fold.rank_of(partner), id,
                  subregion(output, elements_of(aligned_group(partner, distance))));
  }
  fold_out(writer, segments, fold, rank, unfold_phase, output);
  return std::move(writer).finish();
}

}  // namespace cclab
