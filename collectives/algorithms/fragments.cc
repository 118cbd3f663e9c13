#include "algorithms/fragments.h"

#include <algorithm>

#include "algorithms/regions.h"
#include "patterns/binomial.h"
#include "patterns/ring.h"

namespace cclab {

Group Group::everyone(int ranks, int rank) {
  Group group{std::vector<int>(size_t(ranks)), rank};
  for (int r = 0; r < ranks; ++r) group.members[size_t(r)] = r;
  return group;
}

void binomial_broadcast(ScheduleWriter& writer, const Group& group, int root, Span span, BufferKind root_source,
                        uint32_t tag) {
  const BinomialTree tree{group.position, group.size(), root};
  BufferKind source = root_source;
  if (tree.parent() >= 0) {
    writer.recv(group.rank_at(tree.parent()), tag, region_of(BufferKind::output, span));
    source = BufferKind::output;
  }
  for (int child : tree.children()) writer.send(group.rank_at(child), tag, region_of(source, span));
}

BufferKind binomial_reduce(ScheduleWriter& writer, const Group& group, int root, Span span, bool finalize,
                           ReceiveSlots& slots, uint32_t tag) {
  const BinomialTree tree{group.position, group.size(), root};
  std::vector<int> children = tree.children();
  std::reverse(children.begin(), children.end());  // shallowest subtree first
  BufferKind partial = BufferKind::input;
  for (size_t i = 0; i < children.size(); ++i) {
    const Region received = slots.next(span.count);
    writer.recv(group.rank_at(children[i]), tag, received);
    const bool last = i + 1 == children.size() && tree.parent() < 0;
    writer.reduce(region_of(BufferKind::output, span), region_of(partial, span), received, finalize && last);
    partial = BufferKind::output;
  }
  if (tree.parent() >= 0) writer.send(group.rank_at(tree.parent()), tag, region_of(partial, span));
  return partial;
}

void ring_reduce_scatter(ScheduleWriter& writer, const Group& group, Span span, BufferKind contribution, bool finalize,
                         ReceiveSlots& slots, uint32_t first_tag) {
  const Ring ring{group.position, group.size()};
  const size_t chunks = size_t(group.size());
  for (int step = 0; step + 1 < group.size(); ++step) {
    const uint32_t tag = first_tag + uint32_t(step);
    // Step 0 forwards our own contribution; later steps the partial sum reduced one step ago.
    const Span out = balanced_part(span, chunks, size_t(ring.reduce_scatter_send_chunk(step)));
    writer.send(group.rank_at(ring.right()), tag, region_of(step == 0 ? contribution : BufferKind::output, out));
    const Span in = balanced_part(span, chunks, size_t(ring.reduce_scatter_recv_chunk(step)));
    const Region received = slots.next(in.count);
    writer.recv(group.rank_at(ring.left()), tag, received);
    const bool last = step + 2 == group.size();
    writer.reduce(region_of(BufferKind::output, in), region_of(contribution, in), received, finalize && last);
  }
}

void ring_allgather(ScheduleWriter& writer, const Group& group, Span span, uint32_t first_tag) {
  const Ring ring{group.position, group.size()};
  const size_t chunks = size_t(group.size());
  for (int step = 0; step + 1 < group.size(); ++step) {
    const uint32_t tag = first_tag + uint32_t(step);
    // Step 0 forwards the chunk this member completed; later ones what arrived one step ago.
    const Span out = balanced_part(span, chunks, size_t(ring.allgather_send_chunk(step)));
    writer.send(group.rank_at(ring.right()), tag, region_of(BufferKind::output, out));
    const Span in = balanced_part(span, chunks, size_t(ring.allgather_recv_chunk(step)));
    writer.recv(group.rank_at(ring.left()), tag, region_of(BufferKind::output, in));
  }
}

void copy_input_to_output(ScheduleWriter& writer, const CollectiveArgs& args) {
  if (!args.inplace) writer.copy({BufferKind::output, 0, args.count}, {BufferKind::input, 0, args.count});
}

}  // namespace cclab
