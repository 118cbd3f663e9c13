// Van de Geijn broadcast from any root: binomial scatter of blocks, then a ring allgather.
//
// Words used below:
// - block:     the array is cut into `ranks` balanced blocks numbered by rank relative to the
//              root (block b is meant for relative rank b); blocks are empty when count < ranks.
// - scatter:   over the binomial tree rooted at the root (BinomialTree), a rank receives from its
//              parent the blocks of its whole subtree, one contiguous run (subtree_span), and
//              passes each child the run of that child's subtree. Afterwards relative rank r holds
//              blocks [r, r + subtree size); the root holds them all.
// - allgather: a ring over relative ranks. In step s (0 .. ranks-2) relative rank r passes block
//              r - s to its right neighbour and receives block r - s - 1 from its left: it passes
//              on its own block first, then each block it received (or held) the step before. A
//              block the right neighbour already holds from the scatter is not sent, so nothing
//              goes to the root and a subtree's blocks are not sent back into it.
// - tag:       0 for the scatter, 1 + s for allgather step s.
//
// Per rank this sends at most (ranks-1)/ranks·count·w in the allgather, plus, at the root and
// other inner tree ranks, the scatter runs (at most (ranks-1)/ranks·count·w at the root): about
// 2·count·w instead of the binomial tree's log2(ranks)·count·w, which wins for large arrays.
#include "algorithms/fragments.h"
#include "cclab/algorithm.h"
#include "patterns/binomial.h"
#include "patterns/ring.h"
#include "schedule/schedule_writer.h"

namespace cclab {

Schedule build_broadcast_scatter_allgather(const Topology& topology, int rank, const CollectiveArgs& args) {
  const int ranks = topology.ranks();
  const size_t count = args.count, blocks = size_t(ranks);
  const BinomialTree tree{rank, ranks, args.root};
  ScheduleWriter writer(args, ranks, rank);
  auto output = [](Span span) { return Region{BufferKind::output, span.offset, span.count}; };

  // The root sends everything from its input; other ranks from what arrived in their output.
  const bool is_root = tree.parent() < 0;
  const BufferKind source = is_root ? BufferKind::input : BufferKind::output;
  if (is_root) copy_input_to_output(writer, args);

  const uint32_t scatter_tag = 0;
  if (!is_root) writer.recv(tree.parent(), scatter_tag, output(tree.subtree_span(count)));
  for (int child : tree.children()) {
    const Span run = BinomialTree{child, ranks, args.root}.subtree_span(count);
    writer.send(child, scatter_tag, {source, run.offset, run.count});
  }

  const Ring ring{tree.relative(), ranks};  // in relative ranks
  const BinomialTree right{tree.position_of(ring.right()), ranks, args.root};
  const int left = tree.position_of(ring.left());
  for (int step = 0; step + 1 < ranks; ++step) {
    const uint32_t tag = 1 + uint32_t(step);
    const int send_block = ring.chunk(-step), recv_block = ring.chunk(-step - 1);
    if (!right.subtree_contains_relative(send_block)) {
      const Span span = balanced_part(count, blocks, size_t(send_block));
      writer.send(right.position, tag, {source, span.offset, span.count});
    }
    if (!tree.subtree_contains_relative(recv_block))
      writer.recv(left, tag, output(balanced_part(count, blocks, size_t(recv_block))));
  }
  return std::move(writer).finish();
}

}  // namespace cclab
