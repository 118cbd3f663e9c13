#include "algorithms/direct_reads.h"

#include <algorithm>

#include "algorithms/regions.h"

namespace cclab {

size_t direct_chunks(const CollectiveArgs& args, int ranks) {
  const size_t largest_block = balanced_part(args.count, size_t(ranks), 0).count;
  const size_t segment = std::max<size_t>(args.segment_elements(), 1);
  return std::clamp<size_t>((largest_block + segment - 1) / segment, 1, kMostDirectChunks);
}

Span chunk_of_block(const CollectiveArgs& args, int ranks, int owner, size_t chunk, size_t chunks) {
  return balanced_part(balanced_part(args.count, size_t(ranks), size_t(owner)), chunks, chunk);
}

void reduce_own_chunk(ScheduleWriter& writer, const CollectiveArgs& args, int ranks, int rank, size_t chunk,
                      size_t chunks) {
  const Group everyone = Group::everyone(ranks, rank);
  expose_to_every_peer(writer, everyone, reduction_tag(chunk), [&](int peer) {
    return region_of(BufferKind::input, chunk_of_block(args, ranks, peer, chunk, chunks));
  });
  const Span own = chunk_of_block(args, ranks, rank, chunk, chunks);
  reduce_from_every_peer(writer, everyone, reduction_tag(chunk), region_of(BufferKind::input, own),
                         region_of(BufferKind::output, own), /*finalize=*/true);
}

void reduce_from_every_peer(ScheduleWriter& writer, const Group& group, uint32_t tag, Region own, Region target,
                            bool finalize) {
  Region source = own;
  for (int step = 1; step < group.size(); ++step) {
    const int peer = (group.position + step) % group.size();
    writer.read_reduce(group.rank_at(peer), tag, target, source, finalize && step == group.size() - 1);
    source = target;
  }
}

}  // namespace cclab
