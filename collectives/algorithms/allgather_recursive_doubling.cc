// Recursive-doubling allgather: every rank ends with every rank's block in ceil(log2(ranks))
// steps that each double the blocks a rank holds. For small arrays, where steps (latency) matter.
//
// Words used below:
// - block:   the count/ranks elements each rank contributes (block r = input of rank r).
// - step:    distance_doubling_allgather() at distances 1, 2, 4, ...: with a power-of-two rank
//            count rank r swaps everything it holds with rank r ^ d (recursive doubling); with
//            any other count it sends the first min(d, ranks-d) blocks of the run it holds (its
//            own block onwards, wrapping around the array's end) to rank r-d and receives as many
//            from rank r+d (Bruck's dissemination). Blocks are received straight where they
//            belong in the output, so no final rotation is needed; a run that wraps travels as
//            two messages.
// - segment: every message is cut into segments of at most `segment_bytes`, each sent as soon
//            as the step before delivered it.
// - tag:     (step, message, segment).
//
// Per rank this sends (ranks-1)·count/ranks elements for every rank count, DESIGN 3.7's
// (N-1)/N·count, in ceil(log2 N) steps instead of the ring's N-1.
#include "algorithms/fragments.h"
#include "algorithms/segmented_messages.h"
#include "cclab/algorithm.h"
#include "patterns/message_segments.h"
#include "patterns/recursive.h"
#include "schedule/schedule_writer.h"

namespace cclab {

Schedule build_allgather_recursive_doubling(const Topology& topology, int rank, const CollectiveArgs& args) {
  const int ranks = topology.ranks();
  ScheduleWriter writer(args, ranks, rank);
  if (ranks == 1) {
    copy_input_to_output(writer, args);
    return std::move(writer).finish();
  }

  const size_t block = args.count / size_t(ranks);
  const std::vector<AllgatherExchange> exchanges = distance_doubling_allgather(ranks, rank);
  const MessageSegments segments(block * size_t(ranks), args.segment_elements(), exchanges.size(),
                                 /*messages_per_phase=*/2);
  const auto output_of = [&](BlockRun run) {
    return Region{BufferKind::output, size_t(run.first) * block, size_t(run.count) * block};
  };

  // In place the input already is this rank's block of the output.
  if (!args.inplace) writer.copy(output_of({rank, 1}), {BufferKind::input, 0, block});
  for (size_t step = 0; step < exchanges.size(); ++step) {
    const AllgatherExchange& exchange = exchanges[step];
    const std::vector<BlockRun> sent = contiguous_runs(exchange.sent, ranks);
    for (size_t message = 0; message < sent.size(); ++message) {
      // This rank's own block alone goes from the input, not waiting for the copy.
      const bool own_block = sent[message].first == rank && sent[message].count == 1;
      const Region source = own_block ? Region{BufferKind::input, 0, block} : output_of(sent[message]);
      send_segments(writer, segments, exchange.send_to, {step, message}, source);
    }
    const std::vector<BlockRun> received = contiguous_runs(exchange.received, ranks);
    for (size_t message = 0; message < received.size(); ++message)
      recv_segments(writer, segments, exchange.receive_from, {step, message}, output_of(received[message]));
  }
  return std::move(writer).finish();
}

}  // namespace cclab
