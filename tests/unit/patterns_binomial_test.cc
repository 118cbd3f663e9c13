// Pattern math alone: binomial trees and chains from any root, node layouts and rail pieces; and
// the helpers the rooted and hierarchical algorithms build schedules with (dependencies derived
// from memory, receive slots, segment counts).
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "cclab/error.h"
#include "patterns/binomial.h"
#include "patterns/hierarchy.h"
#include "patterns/message_segments.h"
#include "patterns/ring.h"
#include "schedule/schedule_writer.h"

namespace cclab {
namespace {

std::vector<int> roots_of(int size) {
  return size == 1 ? std::vector<int>{0} : std::vector<int>{0, size / 2, size - 1};
}

TEST(BinomialTree, EveryPositionHasOneParentAndTheRootIsReachedInLog2Levels) {
  for (int size = 1; size <= 70; ++size)
    for (int root : roots_of(size)) {
      int deepest = 0;
      for (int position = 0; position < size; ++position) {
        const BinomialTree tree{position, size, root};
        EXPECT_EQ(tree.parent() < 0, position == root);
        if (tree.parent() >= 0) {
          const std::vector<int> siblings = BinomialTree{tree.parent(), size, root}.children();
          EXPECT_EQ(std::count(siblings.begin(), siblings.end(), position), 1)
              << size << " " << root << " " << position;
        }
        int depth = 0;
        for (int up = position; up != root; up = BinomialTree{up, size, root}.parent()) ++depth;
        deepest = std::max(deepest, depth);
      }
      // ceil(log2 size) rounds: the root feeds that many children, and no path is longer.
      int log2_ceiling = 0;
      while ((1 << log2_ceiling) < size) ++log2_ceiling;
      EXPECT_LE(deepest, log2_ceiling) << size << " ranks, root " << root;
      EXPECT_EQ(int(BinomialTree{root, size, root}.children().size()), log2_ceiling);
    }
}

// What a binomial scatter relies on: the children's subtrees cut the parent's subtree, minus the
// parent itself, into consecutive runs; children() lists the farthest (deepest subtree) first.
TEST(BinomialTree, ChildrenSubtreesTileTheParentsSubtree) {
  for (int size = 1; size <= 70; ++size)
    for (int root : roots_of(size)) {
      EXPECT_EQ((BinomialTree{root, size, root}.subtree_size()), size);
      for (int position = 0; position < size; ++position) {
        const BinomialTree tree{position, size, root};
        std::vector<int> children = tree.children();
        std::reverse(children.begin(), children.end());
        int next = tree.relative() + 1;
        for (int child : children) {
          const BinomialTree subtree{child, size, root};
          EXPECT_EQ(subtree.relative(), next);
          next += subtree.subtree_size();
        }
        EXPECT_EQ(next, tree.relative() + tree.subtree_size());
        EXPECT_TRUE(tree.subtree_contains_relative(tree.relative()));
        EXPECT_FALSE(tree.subtree_contains_relative(tree.relative() + tree.subtree_size()));
      }
    }
}

TEST(BinomialTree, SubtreeSpansCoverTheBlocksOfTheSubtree) {
  for (size_t count : {0, 1, 5, 64, 1000})
    for (int size : {1, 2, 3, 6, 13}) {
      const BinomialTree root{1 % size, size, 1 % size};
      EXPECT_EQ(root.subtree_span(count).offset, 0u);
      EXPECT_EQ(root.subtree_span(count).count, count);
      for (int position = 0; position < size; ++position) {
        const BinomialTree tree{position, size, 1 % size};
        const Span span = tree.subtree_span(count);
        size_t blocks = 0;
        for (int relative = tree.relative(); relative < tree.relative() + tree.subtree_size(); ++relative)
          blocks += balanced_part(count, size_t(size), size_t(relative)).count;
        EXPECT_EQ(span.count, blocks);
        EXPECT_EQ(span.offset, balanced_part(count, size_t(size), size_t(tree.relative())).offset);
      }
    }
}

TEST(Chain, VisitsEveryPositionOnceFromTheRoot) {
  for (int size = 1; size <= 9; ++size)
    for (int root : roots_of(size)) {
      std::set<int> visited;
      int position = root;
      EXPECT_EQ((Chain{root, size, root}.previous()), -1);
      for (; position >= 0; position = Chain{position, size, root}.next()) {
        EXPECT_TRUE(visited.insert(position).second);
        const int next = Chain{position, size, root}.next();
        if (next >= 0) {
          EXPECT_EQ((Chain{next, size, root}.previous()), position);
        }
      }
      EXPECT_EQ(int(visited.size()), size);
    }
}

TEST(NodeLayout, GroupsRanksByFirstAppearanceInRankOrder) {
  const NodeLayout layout({7, 3, 7, 3, 5});
  EXPECT_EQ(layout.nodes(), 3);
  EXPECT_EQ(layout.members(0), (std::vector<int>{0, 2}));
  EXPECT_EQ(layout.members(1), (std::vector<int>{1, 3}));
  EXPECT_EQ(layout.members(2), (std::vector<int>{4}));
  EXPECT_EQ(layout.leaders(), (std::vector<int>{0, 1, 4}));
  EXPECT_EQ(layout.node_of(3), 1);
  EXPECT_EQ(layout.local_index(3), 1);
  EXPECT_EQ(layout.node_sizes(), (std::vector<int>{2, 2, 1}));
  EXPECT_EQ(layout.smallest_node_size(), 1);
  EXPECT_EQ(layout.largest_node_size(), 2);
}

TEST(RailPieces, OwnerMatchesTheRingReduceScatter) {
  for (int size : {1, 2, 3, 7})
    for (int rank = 0; rank < size; ++rank) EXPECT_EQ(ring_reduce_scatter_owner(Ring{rank, size}.chunk(1), size), rank);
}

// Each piece lies inside the chunk its owner holds on every node, and the pieces tile the slice.
TEST(RailPieces, TileTheSliceInsideOneChunkPerNode) {
  const std::vector<std::vector<int>> layouts = {{1}, {2, 2}, {3, 1, 2}, {1, 4}, {8, 8, 8}, {5, 3, 7}, {1, 1, 1}};
  for (const std::vector<int>& sizes : layouts)
    for (size_t count : {0, 1, 2, 5, 12, 97, 1000}) {
      const Span slice{11, count};
      const std::vector<RailPiece> pieces = rail_pieces(slice, sizes);
      EXPECT_LE(pieces.size(), max_rail_pieces(sizes));
      size_t next = slice.offset;
      for (const RailPiece& piece : pieces) {
        EXPECT_EQ(piece.span.offset, next);
        EXPECT_GT(piece.span.count, 0u);
        next += piece.span.count;
        ASSERT_EQ(piece.owner.size(), sizes.size());
        for (size_t node = 0; node < sizes.size(); ++node) {
          const int size = sizes[node];
          const int chunk = Ring{piece.owner[node], size}.chunk(1);
          const Span held = balanced_part(slice, size_t(size), size_t(chunk));
          EXPECT_GE(piece.span.offset, held.offset);
          EXPECT_LE(piece.span.offset + piece.span.count, held.offset + held.count);
        }
      }
      EXPECT_EQ(next, slice.offset + count);
    }
}

TEST(RailPieces, EqualNodesGiveTheClassicRails) {
  const std::vector<RailPiece> pieces = rail_pieces({0, 40}, {4, 4, 4});
  ASSERT_EQ(pieces.size(), 4u);
  for (size_t chunk = 0; chunk < 4; ++chunk) {
    EXPECT_EQ(pieces[chunk].span.count, 10u);
    EXPECT_EQ(pieces[chunk].owner, std::vector<int>(3, ring_reduce_scatter_owner(int(chunk), 4)));
  }
}

TEST(RailPieces, UnequalNodesRefineTheirCuts) {
  // Nodes of 2 and 3 ranks over 12 elements cut at 6 and at 4, 8: pieces [0,4) [4,6) [6,8) [8,12).
  const std::vector<RailPiece> pieces = rail_pieces({0, 12}, {2, 3});
  ASSERT_EQ(pieces.size(), 4u);
  const size_t offsets[] = {0, 4, 6, 8};
  const int chunks_of_two[] = {0, 0, 1, 1}, chunks_of_three[] = {0, 1, 1, 2};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(pieces[i].span.offset, offsets[i]);
    EXPECT_EQ(pieces[i].owner[0], ring_reduce_scatter_owner(chunks_of_two[i], 2));
    EXPECT_EQ(pieces[i].owner[1], ring_reduce_scatter_owner(chunks_of_three[i], 3));
  }
}

TEST(ScheduleWriter, DependenciesFollowFromOverlappingMemory) {
  CollectiveArgs args;
  args.count = 100;
  ScheduleWriter writer(args, 2, 0);
  writer.recv(1, 0, {BufferKind::output, 0, 10});  // 0
  writer.send(1, 1, {BufferKind::output, 5, 10});  // 1: reads what 0 wrote
  writer.send(1, 2, {BufferKind::input, 0, 10});   // 2: other buffer
  writer.recv(1, 3, {BufferKind::output, 12, 4});  // 3: overwrites what 1 reads
  writer.send(1, 4, {BufferKind::output, 50, 0});  // empty: left out
  writer.reduce({BufferKind::output, 0, 20}, {BufferKind::output, 0, 20}, {BufferKind::input, 0, 20}, false);
  const Schedule schedule = std::move(writer).finish();
  ASSERT_EQ(schedule.steps.size(), 5u);
  EXPECT_EQ(schedule.steps[1].deps, (std::vector<uint32_t>{0}));
  EXPECT_TRUE(schedule.steps[2].deps.empty());
  EXPECT_EQ(schedule.steps[3].deps, (std::vector<uint32_t>{1}));
  EXPECT_EQ(schedule.steps[4].deps, (std::vector<uint32_t>{0, 1, 3}));  // the reduction writes out[0:20)
}

TEST(ScheduleWriter, InPlaceInputAndOutputAreOneBuffer) {
  CollectiveArgs args;
  args.count = 10;
  args.inplace = true;
  ScheduleWriter writer(args, 2, 0);
  writer.send(1, 0, {BufferKind::input, 0, 10});
  writer.recv(1, 1, {BufferKind::output, 3, 1});
  const Schedule schedule = std::move(writer).finish();
  EXPECT_EQ(schedule.steps[1].deps, (std::vector<uint32_t>{0}));
}

TEST(ReceiveSlots, RotateAndWaitForTheirLastReader) {
  CollectiveArgs args;
  args.count = 10;
  ScheduleWriter writer(args, 2, 0);
  ReceiveSlots slots(writer, 2, 5);
  ReceiveSlots unused(writer, 4, 100);  // reserves no scratch
  std::vector<Region> received;
  for (int message = 0; message < 3; ++message) {
    received.push_back(slots.next(message == 2 ? 3 : 5));
    writer.recv(1, uint32_t(message), received.back());
    writer.reduce({BufferKind::output, 0, received.back().count}, {BufferKind::input, 0, received.back().count},
                  received.back(), false);
  }
  EXPECT_EQ(received[0].offset, received[2].offset);
  EXPECT_NE(received[0].offset, received[1].offset);
  EXPECT_EQ(received[2].count, 3u);
  EXPECT_THROW(slots.next(6), Error);
  const Schedule schedule = std::move(writer).finish();
  EXPECT_EQ(schedule.scratch_count, 10u);
  // The third receive reuses the first slot: after the first receive and the reduction that read it.
  EXPECT_EQ(schedule.steps[4].deps, (std::vector<uint32_t>{0, 1}));
}

TEST(PipelineSegments, CutToTheSegmentSizeWithinTheTagSpace) {
  EXPECT_EQ(pipeline_segments(0, 4, 1), 1u);
  EXPECT_EQ(pipeline_segments(10, 4, 1), 3u);
  EXPECT_EQ(pipeline_segments(12, 4, 6), 3u);
  EXPECT_EQ(pipeline_segments(size_t{1} << 40, 1, 16), (size_t{1} << 24) / 16);
}

}  // namespace
}  // namespace cclab
