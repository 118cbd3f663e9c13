// Recursive-halving reduce-scatter: rank r ends with block r of the array reduced over all ranks,
// in log2(ranks) steps that each halve the data a rank still works on.
//
// Words used below:
// - block:   the count/ranks elements each rank ends with (block r = output of rank r).
// - fold:    for a rank count that is not a power of two, MPICH's fold (PowerOfTwoFold): each
//            extra even rank 2i sends its whole input to rank 2i+1, which reduces it into its
//            own, and waits; the power-of-two core does the steps; at the end 2i+1 sends 2i its
//            block. A core member stands for the blocks of the ranks it represents (its own and
//            the absorbed one's), so a group of consecutive members stands for contiguous blocks.
// - step:    at distances core/2, ..., 2, 1 member m sends its partial sums of the blocks of
//            aligned_group(m ^ d, d) to member m ^ d and reduces what that one sends for
//            aligned_group(m, d) into its own partial sums. In the last step (d = 1) the blocks
//            travel as one message each, so each reduction that completes a block (and divides
//            an average) writes where the block belongs: this rank's output, or for the absorbed
//            rank's block the accumulator it is sent back from.
// - accumulator: partial sums between steps live in scratch (the output holds one block only):
//            the whole array for an absorbing rank, which folds before the first step; otherwise
//            the half it keeps after the first step; none when that step is already the last.
// - segment: every message is cut into segments of at most `segment_bytes`; a segment of the
//            next step waits only for the segments of this one that it overlaps.
// - slot:    received segments land in `segments_in_flight` rotating scratch slots; a slot is
//            reused only after the reduction that read it.
// - tag:     (phase, message, segment) with phases fold, each step, unfold.
//
// Per rank, for a power-of-two rank count, this sends (ranks-1)·count/ranks elements, DESIGN
// 3.7's (N-1)/N·count; with the fold an extra rank sends the whole array to its partner first.
#include "algorithms/fragments.h"
#include "algorithms/regions.h"
#include "algorithms/segmented_messages.h"
#include "cclab/algorithm.h"
#include "patterns/message_segments.h"
#include "patterns/recursive.h"
#include "schedule/schedule_writer.h"

namespace cclab {

Schedule build_reduce_scatter_recursive_halving(const Topology& topology, int rank, const CollectiveArgs& args) {
  const int ranks = topology.ranks();
  ScheduleWriter writer(args, ranks, rank);
  if (ranks == 1) {
    copy_input_to_output(writer, args);
    return std::move(writer).finish();
  }

  const size_t block = args.count / size_t(ranks);
  const Span array{0, block * size_t(ranks)};
  const Region input = region_of(BufferKind::input, array), output{BufferKind::output, 0, block};
  const PowerOfTwoFold fold{ranks};
  const std::vector<int> halving = halving_distances(fold.core_size());
  const size_t fold_phase = 0, unfold_phase = halving.size() + 1;
  const MessageSegments segments(array.count, args.segment_elements(), unfold_phase + 1, /*messages_per_phase=*/2);
  ReceiveSlots slots(writer, args.segments_in_flight, segments.largest_segment());

  if (fold.sits_out(rank)) {
    send_segments(writer, segments, rank + 1, {fold_phase}, input);
    recv_segments(writer, segments, rank + 1, {unfold_phase}, output);
    return std::move(writer).finish();
  }

  const auto block_of = [&](int any_rank) { return Span{size_t(any_rank) * block, block}; };
  // The blocks of the ranks a group of consecutive members stands for.
  const auto elements_of = [&](MemberRange group) {
    const size_t first = size_t(fold.first_rank(group.first));
    const size_t end = size_t(fold.end_rank(group.first + group.count - 1));
    return Span{first * block, (end - first) * block};
  };
  const int member = fold.member_of(rank);
  // Where partial sums live between steps (the accumulator, above), and the scratch holding them.
  const Span accumulated = fold.absorbs(rank)   ? array
                           : halving.size() > 1 ? elements_of(aligned_group(member, halving.front()))
                                                : Span{};
  const size_t accumulator = writer.reserve_scratch(accumulated.count);
  const auto accumulator_of = [&](Span elements) {
    return Region{BufferKind::scratch, accumulator + elements.offset - accumulated.offset, elements.count};
  };
  bool summed = false;  // whether the accumulator holds this rank's partial sums yet
  const auto partial_sums = [&](Span elements) {
    return summed ? accumulator_of(elements) : region_of(BufferKind::input, elements);
  };

  if (fold.absorbs(rank)) {
    recv_reduce_segments(writer, segments, slots, rank - 1, {fold_phase}, accumulator_of(array), input, false);
    summed = true;
  }
  for (size_t step = 0; step < halving.size(); ++step) {
    const int distance = halving[step], partner = member ^ distance, peer = fold.rank_of(partner);
    if (step + 1 < halving.size()) {
      const Span kept = elements_of(aligned_group(member, distance));
      send_segments(writer, segments, peer, {step + 1}, partial_sums(elements_of(aligned_group(partner, distance))));
      recv_reduce_segments(writer, segments, slots, peer, {step + 1}, accumulator_of(kept), partial_sums(kept), false);
      summed = true;
      continue;
    }
    // Last step: message k carries the block of the k-th rank the receiving member stands for.
    for (int owner = fold.first_rank(partner); owner < fold.end_rank(partner); ++owner)
      send_segments(writer, segments, peer, {step + 1, size_t(owner - fold.first_rank(partner))},
                    partial_sums(block_of(owner)));
    for (int owner = fold.first_rank(member); owner < fold.end_rank(member); ++owner) {
      const Region target = owner == rank ? output : accumulator_of(block_of(owner));
      recv_reduce_segments(writer, segments, slots, peer, {step + 1, size_t(owner - fold.first_rank(member))}, target,
                           partial_sums(block_of(owner)), true);
    }
  }
  if (fold.absorbs(rank)) send_segments(writer, segments, rank - 1, {unfold_phase}, accumulator_of(block_of(rank - 1)));
  return std::move(writer).finish();
}

}  // namespace cclab
