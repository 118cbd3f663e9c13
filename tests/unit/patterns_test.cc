// Pattern math alone: partitions cover the array exactly, ring indices walk every chunk once.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "patterns/partition.h"
#include "patterns/ring.h"
// The double binary tree, recursive halving and doubling, the block ring, message segments.
#include "patterns/block_ring.h"
#include "patterns/double_binary_tree.h"
#include "patterns/message_segments.h"
#include "patterns/recursive.h"

namespace cclab {
namespace {

TEST(Partition, PartsAreContiguousBalancedAndCoverTheArray) {
  for (size_t count : {0, 1, 2, 7, 64, 1000, 1031})
    for (size_t parts : {1, 2, 3, 7, 64}) {
      size_t next = 0;
      for (size_t i = 0; i < parts; ++i) {
        const Span part = balanced_part(count, parts, i);
        EXPECT_EQ(part.offset, next);
        EXPECT_TRUE(part.count == count / parts || part.count == count / parts + 1);
        next += part.count;
      }
      EXPECT_EQ(next, count);
    }
  const Span inner = balanced_part(Span{100, 10}, 3, 1);
  EXPECT_EQ(inner.offset, 104u);
  EXPECT_EQ(inner.count, 3u);
}

TEST(Ring, EveryStepMovesADifferentChunkAndEndsOwningTheNext) {
  for (int size : {1, 2, 3, 5, 8}) {
    for (int rank = 0; rank < size; ++rank) {
      const Ring ring{rank, size};
      EXPECT_EQ((Ring{ring.right(), size}.left()), rank);
      std::set<int> received;
      for (int step = 0; step + 1 < size; ++step) {
        received.insert(ring.reduce_scatter_recv_chunk(step));
        // What I receive in step s is what my left neighbour sends in step s.
        EXPECT_EQ(ring.reduce_scatter_recv_chunk(step), (Ring{ring.left(), size}.reduce_scatter_send_chunk(step)));
        EXPECT_EQ(ring.allgather_recv_chunk(step), (Ring{ring.left(), size}.allgather_send_chunk(step)));
      }
      EXPECT_EQ(int(received.size()), size - 1);
      EXPECT_EQ(received.count(rank), 0u);  // never receives its own chunk in reduce-scatter
      if (size > 1) {
        EXPECT_EQ(ring.reduce_scatter_recv_chunk(size - 2), ring.chunk(1));
      }
    }
  }
}

TEST(DoubleBinaryTree, MatchesNcclsPictureForThirteenRanks) {
  // NCCL's trees.cc draws tree 0 for 13 ranks: 0-8, 8-{4,12}, 4-{2,6}, 12-{10}, 2-{1,3}, 6-{5,7}, 10-{9,11}.
  const std::map<int, std::vector<int>> children = {{0, {8}},     {8, {4, 12}}, {4, {2, 6}},  {12, {10}},
                                                     {2, {1, 3}}, {6, {5, 7}},  {10, {9, 11}}};
  for (int rank = 0; rank < 13; ++rank) {
    const TreeLinks links = binary_tree(13, rank);
    const auto expected = children.find(rank);
    EXPECT_EQ(links.children, expected == children.end() ? std::vector<int>{} : expected->second) << rank;
  }
  // Tree 1 is shifted by one for an odd size: rooted at 1, whose child is 9.
  EXPECT_EQ(double_binary_tree(13, 1, 1).parent, -1);
  EXPECT_EQ(double_binary_tree(13, 1, 1).children, std::vector<int>{9});
  // and mirrored for an even size: rooted at size-1.
  EXPECT_EQ(double_binary_tree(12, 11, 1).parent, -1);
  EXPECT_EQ(double_binary_tree(12, 11, 1).children, std::vector<int>{11 - 8});
}

TEST(DoubleBinaryTree, BothTreesSpanEveryRankAndShareTheWork) {
  for (int size = 1; size <= 64; ++size) {
    std::vector<int> interior_in(size_t(size), 0);
    for (int tree = 0; tree < 2; ++tree) {
      int roots = 0, root = -1;
      for (int rank = 0; rank < size; ++rank) {
        const TreeLinks links = double_binary_tree(size, rank, tree);
        EXPECT_LE(links.children.size(), 2u);
        if (!links.children.empty()) ++interior_in[size_t(rank)];
        if (links.parent < 0) ++roots, root = rank;
        // Links agree from both ends.
        for (int child : links.children) EXPECT_EQ(double_binary_tree(size, child, tree).parent, rank);
        if (links.parent >= 0) {
          const std::vector<int> siblings = double_binary_tree(size, links.parent, tree).children;
          EXPECT_EQ(std::count(siblings.begin(), siblings.end(), rank), 1) << size << " " << rank;
        }
      }
      ASSERT_EQ(roots, 1) << size << " ranks, tree " << tree;
      // Every rank is reached from the root, within log2(size) + 1 hops.
      std::vector<int> depth(size_t(size), -1), frontier = {root};
      depth[size_t(root)] = 0;
      while (!frontier.empty()) {
        const int rank = frontier.back();
        frontier.pop_back();
        for (int child : double_binary_tree(size, rank, tree).children) {
          ASSERT_EQ(depth[size_t(child)], -1);
          depth[size_t(child)] = depth[size_t(rank)] + 1;
          frontier.push_back(child);
        }
      }
      for (int rank = 0; rank < size; ++rank) {
        EXPECT_GE(depth[size_t(rank)], 0) << size << " ranks, tree " << tree << ", rank " << rank;
        EXPECT_LE(depth[size_t(rank)], int(std::log2(size)) + 1);
      }
    }
    // A rank is interior in one tree at most; with an odd size rank 0 is the exception.
    for (int rank = 0; rank < size; ++rank)
      if (!(size % 2 == 1 && rank == 0)) {
        EXPECT_LE(interior_in[size_t(rank)], 1) << size << " ranks, rank " << rank;
      }
  }
}

TEST(PowerOfTwoFold, PairsTheExtraRanksAndKeepsMembersInRankOrder) {
  for (int ranks = 1; ranks <= 64; ++ranks) {
    const PowerOfTwoFold fold{ranks};
    const int core = fold.core_size();
    EXPECT_EQ(core & (core - 1), 0);
    EXPECT_TRUE(core <= ranks && ranks < 2 * core);
    int covered = 0;  // members stand for consecutive ranks, together all of them
    for (int member = 0; member < core; ++member) {
      const int rank = fold.rank_of(member);
      EXPECT_EQ(fold.member_of(rank), member);
      EXPECT_FALSE(fold.sits_out(rank));
      EXPECT_EQ(fold.first_rank(member), covered);
      EXPECT_EQ(fold.end_rank(member) - fold.first_rank(member), fold.absorbs(rank) ? 2 : 1);
      if (fold.absorbs(rank)) {
        EXPECT_TRUE(fold.sits_out(rank - 1));
      }
      covered = fold.end_rank(member);
    }
    EXPECT_EQ(covered, ranks);
    int sitting_out = 0;
    for (int rank = 0; rank < ranks; ++rank)
      if (fold.sits_out(rank)) {
        ++sitting_out;
        EXPECT_EQ(fold.member_of(rank), -1);
      }
    EXPECT_EQ(sitting_out, fold.extra_ranks());
  }
}

TEST(RecursiveHalving, KeptGroupsNestAndEndWithTheMembersOwnBlock) {
  for (int size : {1, 2, 4, 8, 32}) {
    EXPECT_EQ(halving_distances(size).size(), doubling_distances(size).size());
    for (int member = 0; member < size; ++member) {
      MemberRange held{0, size};
      for (int distance : halving_distances(size)) {
        const MemberRange kept = aligned_group(member, distance);
        const MemberRange given = aligned_group(member ^ distance, distance);
        // The two halves of what was held: one kept, the other handed to the partner.
        EXPECT_EQ(std::min(kept.first, given.first), held.first);
        EXPECT_EQ(kept.count + given.count, held.count);
        EXPECT_EQ(std::abs(kept.first - given.first), distance);
        held = kept;
      }
      EXPECT_EQ(held.first, member);
      EXPECT_EQ(held.count, 1);
    }
  }
}

TEST(DistanceDoublingAllgather, EveryRankGathersEveryBlockOnceForAnySize) {
  for (int size = 1; size <= 64; ++size) {
    const size_t ranks = size_t(size);
    std::vector<std::set<int>> held(ranks);
    std::vector<int> sent_blocks(ranks, 0);
    for (int rank = 0; rank < size; ++rank) held[size_t(rank)] = {rank};
    const size_t steps = distance_doubling_allgather(size, 0).size();
    EXPECT_EQ(steps, size_t(std::ceil(std::log2(size))));
    for (size_t step = 0; step < steps; ++step) {
      std::vector<std::set<int>> next = held;
      for (int rank = 0; rank < size; ++rank) {
        const AllgatherExchange exchange = distance_doubling_allgather(size, rank)[step];
        // What I receive is what the sender sends me, and it sends only blocks it holds.
        const AllgatherExchange sender = distance_doubling_allgather(size, exchange.receive_from)[step];
        EXPECT_EQ(sender.send_to, rank);
        EXPECT_EQ(sender.sent.first % size, exchange.received.first % size);
        EXPECT_EQ(sender.sent.count, exchange.received.count);
        for (const BlockRun& run : contiguous_runs(exchange.received, size))
          for (int block = run.first; block < run.first + run.count; ++block) {
            EXPECT_TRUE(held[size_t(exchange.receive_from)].count(block)) << size << " " << rank << " " << step;
            EXPECT_TRUE(next[size_t(rank)].insert(block).second) << "block " << block << " arrives twice";
          }
        sent_blocks[size_t(rank)] += exchange.sent.count;
      }
      held = next;
    }
    for (int rank = 0; rank < size; ++rank) {
      EXPECT_EQ(int(held[size_t(rank)].size()), size) << size << " ranks, rank " << rank;
      EXPECT_EQ(sent_blocks[size_t(rank)], size - 1);
    }
  }
}

TEST(DistanceDoublingAllgather, RunsSplitWhereTheyWrapAround) {
  EXPECT_EQ(contiguous_runs({2, 3}, 8).size(), 1u);
  const std::vector<BlockRun> wrapped = contiguous_runs({6, 4}, 8);
  ASSERT_EQ(wrapped.size(), 2u);
  EXPECT_EQ(wrapped[0].first, 6);
  EXPECT_EQ(wrapped[0].count, 2);
  EXPECT_EQ(wrapped[1].first, 0);
  EXPECT_EQ(wrapped[1].count, 2);
}

TEST(BlockRing, ReduceScatterEndsWithTheOwnBlockAndAllgatherStartsFromIt) {
  for (int size : {1, 2, 3, 5, 8}) {
    for (int rank = 0; rank < size; ++rank) {
      const BlockRing ring{Ring{rank, size}};
      const BlockRing left{Ring{ring.ring.left(), size}};
      std::set<int> reduced, gathered;
      for (int step = 0; step + 1 < size; ++step) {
        EXPECT_EQ(ring.reduce_scatter_recv_block(step), left.reduce_scatter_send_block(step));
        EXPECT_EQ(ring.allgather_recv_block(step), left.allgather_send_block(step));
        if (step > 0) {
          // What a rank sends on is what it completed or received one step before.
          EXPECT_EQ(ring.reduce_scatter_send_block(step), ring.reduce_scatter_recv_block(step - 1));
          EXPECT_EQ(ring.allgather_send_block(step), ring.allgather_recv_block(step - 1));
        }
        reduced.insert(ring.reduce_scatter_recv_block(step));
        gathered.insert(ring.allgather_recv_block(step));
      }
      if (size > 1) {
        EXPECT_EQ(ring.reduce_scatter_recv_block(size - 2), rank);
        EXPECT_EQ(ring.allgather_send_block(0), rank);
      }
      EXPECT_EQ(int(gathered.size()), size - 1);
      EXPECT_EQ(gathered.count(rank), 0u);
      EXPECT_EQ(int(reduced.size()), size - 1);
    }
  }
}

TEST(MessageSegments, TagsAreDistinctAndSegmentsRespectTheSize) {
  const MessageSegments segments(100, 7, 3, 2);
  std::set<uint32_t> tags;
  for (size_t phase = 0; phase < 3; ++phase)
    for (size_t message = 0; message < 2; ++message)
      for (size_t length : {size_t(0), size_t(1), size_t(7), size_t(8), size_t(100)}) {
        size_t covered = 0;
        for (size_t index = 0; index < segments.segments(length); ++index) {
          const Span part = segments.segment({5, length}, index);
          EXPECT_EQ(part.offset, 5 + covered);
          EXPECT_LE(part.count, 7u);
          EXPECT_LE(part.count, segments.largest_segment());
          covered += part.count;
          if (length == 100) {
            EXPECT_TRUE(tags.insert(segments.tag({phase, message}, index)).second);
          }
        }
        EXPECT_EQ(covered, length);
      }
  EXPECT_EQ(tags.size(), 3u * 2u * 15u);  // 100 elements in 15 segments of at most 7
  // When tags would run out, segments grow instead, and every tag still fits in 24 bits.
  const MessageSegments capped(size_t{1} << 30, 1, 64);
  EXPECT_EQ(capped.segments(size_t{1} << 30), (size_t{1} << 24) / 64);
  EXPECT_EQ(capped.largest_segment(), size_t{64} << 6);
  EXPECT_LT(capped.tag({63}, capped.segments(size_t{1} << 30) - 1), uint32_t{1} << 24);
}

}  // namespace
}  // namespace cclab
