// Pipelined chain broadcast: root -> root+1 -> ... -> root-1, segmented.
//
// Words used below:
// - chain:   ranks in rank order starting at the root (Chain); each rank receives from the one
//            before it and forwards to the one after it; the last rank (root - 1) only receives.
// - segment: the array is cut into segments of at most `segment_bytes`; a segment is one message
//            per link. A rank posts the receives of all segments at once (they land straight in
//            its output: no scratch, so `segments_in_flight` does not limit them) and forwards
//            segment j as soon as it arrived, so every link of the chain carries a different
//            segment at the same time and the time is about (ranks - 1 + segments) segment
//            transfers instead of (ranks - 1) whole arrays.
// - tag:     segment j uses tag j on every link.
//
// Per rank this sends count·w, except the last rank, which sends nothing (DESIGN 3.7).
#include "algorithms/fragments.h"
#include "cclab/algorithm.h"
#include "patterns/binomial.h"
#include "patterns/message_segments.h"
#include "schedule/schedule_writer.h"

namespace cclab {

Schedule build_broadcast_chain(const Topology& topology, int rank, const CollectiveArgs& args) {
  const int ranks = topology.ranks();
  const Chain chain{rank, ranks, args.root};
  ScheduleWriter writer(args, ranks, rank);
  if (rank == args.root) copy_input_to_output(writer, args);

  // The root forwards from its input; everyone else from what arrived in its output.
  const BufferKind source = chain.previous() < 0 ? BufferKind::input : BufferKind::output;
  const size_t segments = pipeline_segments(args.count, args.segment_elements(), 1);
  for (size_t segment = 0; segment < segments; ++segment) {
    const Span span = balanced_part(args.count, segments, segment);
    const uint32_t tag = uint32_t(segment);
    if (chain.previous() >= 0) writer.recv(chain.previous(), tag, {BufferKind::output, span.offset, span.count});
    if (chain.next() >= 0) writer.send(chain.next(), tag, {source, span.offset, span.count});
  }
  return std::move(writer).finish();
}

}  // namespace cclab
