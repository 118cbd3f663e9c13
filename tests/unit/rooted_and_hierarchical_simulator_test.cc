// The simulator proves the rooted algorithms (broadcast binomial, chain, scatter_allgather;
// reduce binomial) for 1..64 ranks and several roots, and the hierarchical allreduces (hier_rab,
// hier_rail, hier_direct) for equal, unequal and interleaved nodes: every element count that stresses the
// index math, in and out of place, with segments small enough that every pipeline is deep.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <sstream>
#include <tuple>

#include "cclab/algorithm.h"
#include "cclab/simulator.h"
#include "topologies.h"

namespace cclab {
namespace {

// Empty, one element, one short of the ranks, one past them, primes, 2^k - 1 and 2^k + 1.
std::vector<size_t> interesting_counts(int ranks) {
  const std::set<size_t> counts = {0, 1, size_t(std::max(ranks - 1, 1)), size_t(ranks) + 1, 7, 31, 65};
  return {counts.begin(), counts.end()};
}

std::vector<int> roots_of(int ranks) {
  const std::set<int> roots = {0, ranks / 2, ranks - 1};
  return {roots.begin(), roots.end()};
}

std::string describe(const Topology& topology, const CollectiveArgs& args) {
  std::ostringstream os;
  os << "nodes of ranks {";
  for (int rank = 0; rank < topology.ranks(); ++rank) os << (rank ? "," : "") << topology.node_of_rank[size_t(rank)];
  os << "}, count " << args.count << ", root " << args.root << ", segment " << args.segment_bytes << " B"
     << (args.inplace ? ", in place" : "");
  return os.str();
}

// The dependency proof is quadratic in steps; it runs on the smaller cases.
bool small_enough_for_dependency_check(int ranks, size_t count) { return ranks <= 16 || count <= 16; }

::testing::AssertionResult proven(const Algorithm& algorithm, const Topology& topology, const CollectiveArgs& args) {
  SimulationOptions options;
  options.check_dependencies = small_enough_for_dependency_check(topology.ranks(), args.count);
  const SimulationResult result = simulate(algorithm, topology, args, options);
  if (result.correct) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << collective_name(algorithm.collective) << " " << algorithm.name << " on "
                                       << describe(topology, args) << ": " << result.error;
}

CollectiveArgs small_segments(Collective collective, size_t count, bool inplace, int root = 0) {
  CollectiveArgs args;
  args.collective = collective;
  args.count = count;
  args.inplace = inplace;
  args.root = root;
  args.op = ReduceOp::avg;      // the proof counts the average's divisions
  args.segment_bytes = 3 * 4;   // 3 f32 elements: many segments, uneven tails
  args.segments_in_flight = 2;  // receive slots are reused often
  return args;
}

const std::vector<std::string> kBroadcasts = {"binomial", "chain", "scatter_allgather"};
const std::vector<std::string> kHierarchical = {"hier_rab", "hier_rail", "hier_direct"};

TEST(RootedSimulator, BroadcastsForEveryRankCountRootAndCount) {
  for (const std::string& name : kBroadcasts) {
    const Algorithm* broadcast = find_algorithm(Collective::broadcast, name);
    ASSERT_NE(broadcast, nullptr) << name;
    for (int ranks = 1; ranks <= 64; ++ranks)
      for (int root : roots_of(ranks))
        for (size_t count : interesting_counts(ranks))
          for (bool inplace : {false, true})
            ASSERT_TRUE(proven(*broadcast, Topology::single_node(ranks),
                               small_segments(Collective::broadcast, count, inplace, root)));
  }
}

TEST(RootedSimulator, BinomialReduceForEveryRankCountRootAndCount) {
  const Algorithm* reduce = find_algorithm(Collective::reduce, "binomial");
  ASSERT_NE(reduce, nullptr);
  for (int ranks = 1; ranks <= 64; ++ranks)
    for (int root : roots_of(ranks))
      for (size_t count : interesting_counts(ranks))
        for (bool inplace : {false, true})
          ASSERT_TRUE(
              proven(*reduce, Topology::single_node(ranks), small_segments(Collective::reduce, count, inplace, root)));
}

// With the default segment size each array is one segment: the unpipelined path.
TEST(RootedSimulator, WholeArrayInOneSegment) {
  for (int ranks : {2, 3, 5, 8, 17}) {
    for (size_t count : {size_t(1000), size_t(1021)}) {
      CollectiveArgs args;
      args.count = count;
      args.root = ranks - 2;
      args.collective = Collective::broadcast;
      for (const std::string& name : kBroadcasts)
        ASSERT_TRUE(proven(*find_algorithm(Collective::broadcast, name), Topology::single_node(ranks), args));
      args.collective = Collective::reduce;
      ASSERT_TRUE(proven(*find_algorithm(Collective::reduce, "binomial"), Topology::single_node(ranks), args));
      args.collective = Collective::allreduce;
      for (const std::string& name : kHierarchical)
        ASSERT_TRUE(
            proven(*find_algorithm(Collective::allreduce, name), nodes_of({ranks / 2, ranks - ranks / 2}, true), args));
    }
  }
}

// The simulator counts the average's divisions, not the op: it covers every op because no
// schedule depends on it.
TEST(RootedSimulator, SchedulesAreTheSameForEveryOp) {
  const Topology topology = nodes_of({3, 1, 2}, false);
  const std::vector<std::pair<Collective, std::string>> algorithms = {
      {Collective::broadcast, "binomial"},          {Collective::broadcast, "chain"},
      {Collective::broadcast, "scatter_allgather"}, {Collective::reduce, "binomial"},
      {Collective::allreduce, "hier_rab"},          {Collective::allreduce, "hier_rail"},
      {Collective::allreduce, "hier_direct"}};
  for (const auto& [collective, name] : algorithms) {
    CollectiveArgs args = small_segments(collective, 29, false, 1);
    for (int rank = 0; rank < topology.ranks(); ++rank) {
      args.op = ReduceOp::sum;
      const std::string reference = to_string(find_algorithm(collective, name)->build(topology, rank, args));
      for (ReduceOp op : kAllReduceOps) {
        args.op = op;
        EXPECT_EQ(to_string(find_algorithm(collective, name)->build(topology, rank, args)), reference) << name;
      }
    }
  }
}

TEST(HierarchicalSimulator, EqualNodesContiguousAndInterleaved) {
  for (const std::string& name : kHierarchical) {
    const Algorithm* allreduce = find_algorithm(Collective::allreduce, name);
    ASSERT_NE(allreduce, nullptr) << name;
    for (int nodes = 1; nodes <= 8; ++nodes)
      for (int ranks_per_node = 1; ranks_per_node <= 8; ++ranks_per_node)
        for (bool interleaved : {false, true}) {
          if (interleaved && (nodes == 1 || ranks_per_node == 1)) continue;  // same as contiguous
          const Topology topology = nodes_of(std::vector<int>(size_t(nodes), ranks_per_node), interleaved);
          for (size_t count : interesting_counts(topology.ranks()))
            for (bool inplace : {false, true})
              ASSERT_TRUE(proven(*allreduce, topology, small_segments(Collective::allreduce, count, inplace)));
        }
  }
}

TEST(HierarchicalSimulator, UnequalNodes) {
  const std::vector<std::vector<int>> layouts = {{3, 1, 2}, {1, 4},       {4, 1}, {2, 1},      {1, 1, 3},
                                                 {5, 3, 7}, {6, 2, 3, 1}, {8, 1}, {1, 8, 2, 2}};
  for (const std::string& name : kHierarchical) {
    const Algorithm* allreduce = find_algorithm(Collective::allreduce, name);
    for (const std::vector<int>& sizes : layouts)
      for (bool interleaved : {false, true}) {
        const Topology topology = nodes_of(sizes, interleaved);
        for (size_t count : interesting_counts(topology.ranks()))
          for (bool inplace : {false, true})
            for (size_t segment_elements : {size_t(1), size_t(3), size_t(1) << 18}) {
              CollectiveArgs args = small_segments(Collective::allreduce, count, inplace);
              args.segment_bytes = segment_elements * 4;
              ASSERT_TRUE(proven(*allreduce, topology, args));
            }
      }
  }
}

// The executor matches a message by (sender, receiver, tag): within one schedule a tag may be
// used once per peer and direction, and must fit 24 bits.
TEST(RootedSimulator, TagsAreUniquePerPeerAndDirection) {
  struct Case {
    Collective collective;
    std::string name;
    Topology topology;
  };
  const std::vector<Case> cases = {
      {Collective::broadcast, "binomial", Topology::single_node(13)},
      {Collective::broadcast, "chain", Topology::single_node(13)},
      {Collective::broadcast, "scatter_allgather", Topology::single_node(13)},
      {Collective::reduce, "binomial", Topology::single_node(13)},
      {Collective::allreduce, "hier_rab", nodes_of({3, 1, 2, 4}, true)},
      {Collective::allreduce, "hier_rail", nodes_of({3, 1, 2, 4}, true)},
      {Collective::allreduce, "hier_rail", nodes_of({4, 4, 4}, false)},
      {Collective::allreduce, "hier_direct", nodes_of({3, 1, 2, 4}, true)},
      {Collective::allreduce, "hier_direct", nodes_of({4, 4, 4}, false)},
  };
  for (const Case& c : cases) {
    const CollectiveArgs args = small_segments(c.collective, 257, false, 5);
    for (int rank = 0; rank < c.topology.ranks(); ++rank) {
      std::set<std::tuple<StepKind, int, uint32_t>> seen;
      for (const Step& step : find_algorithm(c.collective, c.name)->build(c.topology, rank, args).steps) {
        if (step.kind != StepKind::send && step.kind != StepKind::recv) continue;
        EXPECT_LT(step.tag, uint32_t{1} << 24);
        EXPECT_TRUE(seen.insert({step.kind, step.peer, step.tag}).second)
            << c.name << " rank " << rank << " reuses tag " << step.tag << " with peer " << step.peer;
      }
    }
  }
}

// DESIGN 3.7: a pipelined chain sends the whole array once per non-leaf rank, the tail nothing.
TEST(RootedTraffic, ChainBroadcastSendsTheArrayOncePerNonLeafRank) {
  const Algorithm* chain = find_algorithm(Collective::broadcast, "chain");
  for (int ranks : {1, 2, 5, 16})
    for (int root : roots_of(ranks))
      for (size_t count : {size_t(0), size_t(1), size_t(1000), size_t(4099)}) {
        CollectiveArgs args = small_segments(Collective::broadcast, count, false, root);
        args.segment_bytes = 256;
        const SimulationResult result =
            simulate(*chain, Topology::single_node(ranks), args, SimulationOptions{.check_dependencies = false});
        ASSERT_TRUE(result.correct) << result.error;
        const int tail = (root + ranks - 1) % ranks;
        for (int rank = 0; rank < ranks; ++rank) {
          EXPECT_EQ(result.elements_sent[size_t(rank)], rank == tail ? 0 : count) << ranks << " ranks, rank " << rank;
          EXPECT_EQ(result.elements_received[size_t(rank)], rank == root ? 0 : count);
        }
      }
}

TEST(RootedTraffic, BinomialTreesSendTheArrayOncePerTreeEdge) {
  const Algorithm* broadcast = find_algorithm(Collective::broadcast, "binomial");
  const Algorithm* reduce = find_algorithm(Collective::reduce, "binomial");
  const size_t count = 1000;
  for (int ranks : {2, 7, 8}) {
    CollectiveArgs args = small_segments(Collective::broadcast, count, false, 1);
    args.segment_bytes = 400;
    SimulationResult result = simulate(*broadcast, Topology::single_node(ranks), args, {.check_dependencies = false});
    ASSERT_TRUE(result.correct) << result.error;
    // The root feeds one child per power of two below the rank count.
    int root_children = 0;
    while ((1 << root_children) < ranks) ++root_children;
    EXPECT_EQ(result.elements_sent[1], size_t(root_children) * count);
    EXPECT_EQ(result.max_elements_received(), count);
    args.collective = Collective::reduce;
    result = simulate(*reduce, Topology::single_node(ranks), args, {.check_dependencies = false});
    ASSERT_TRUE(result.correct) << result.error;
    EXPECT_EQ(result.elements_received[1], size_t(root_children) * count);
    for (int rank = 0; rank < ranks; ++rank) EXPECT_EQ(result.elements_sent[size_t(rank)], rank == 1 ? 0 : count);
  }
}

// Every rank but the root receives each element once (its subtree's blocks in the scatter, the
// others in the allgather); no rank sends more than (ranks-1) blocks in either phase.
TEST(RootedTraffic, ScatterAllgatherReceivesEachElementOnce) {
  const Algorithm* broadcast = find_algorithm(Collective::broadcast, "scatter_allgather");
  for (int ranks : {2, 3, 8, 13})
    for (size_t count : {size_t(1040), size_t(1041)}) {
      const int root = ranks - 1;
      const CollectiveArgs args = small_segments(Collective::broadcast, count, false, root);
      const SimulationResult result =
          simulate(*broadcast, Topology::single_node(ranks), args, {.check_dependencies = false});
      ASSERT_TRUE(result.correct) << result.error;
      for (int rank = 0; rank < ranks; ++rank)
        EXPECT_EQ(result.elements_received[size_t(rank)], rank == root ? 0 : count);
      const size_t largest_block = (count + size_t(ranks) - 1) / size_t(ranks);
      EXPECT_LE(result.max_elements_sent(), 2 * size_t(ranks - 1) * largest_block);
    }
}

// Per rank, with k ranks per node and N nodes:
//   hier_rab:  a leader 2(N-1)/N·count between nodes + count per intra-node tree child,
//              a non-leader count (plus count per child it forwards the broadcast to);
//   hier_rail, hier_direct: 2(k-1)/k·count inside the node (sent or read by peers)
//              + 2(N-1)/N·count/k between nodes.
TEST(HierarchicalTraffic, MatchesTheFormulasForEqualNodes) {
  const Algorithm* rab = find_algorithm(Collective::allreduce, "hier_rab");
  const Algorithm* rail = find_algorithm(Collective::allreduce, "hier_rail");
  const size_t count = 3 * 5 * 7 * 8 * 16;  // divisible by every split below
  for (const auto& [nodes, per_node] : std::vector<std::pair<size_t, size_t>>{{2, 2}, {4, 2}, {2, 4}, {3, 1}, {1, 4}}) {
    const Topology topology = nodes_of(std::vector<int>(nodes, int(per_node)), false);
    CollectiveArgs args = small_segments(Collective::allreduce, count, false);
    args.segment_bytes = 4 * count / 4;  // four slices
    const SimulationResult rab_result = simulate(*rab, topology, args, {.check_dependencies = false});
    const SimulationResult rail_result = simulate(*rail, topology, args, {.check_dependencies = false});
    ASSERT_TRUE(rab_result.correct) << rab_result.error;
    ASSERT_TRUE(rail_result.correct) << rail_result.error;
    size_t leader_children = 0;
    while ((size_t{1} << leader_children) < per_node) ++leader_children;
    const size_t between_nodes = 2 * (nodes - 1) * count / nodes;
    EXPECT_EQ(rab_result.elements_sent[0], between_nodes + leader_children * count) << nodes << "x" << per_node;
    if (per_node > 1) {
      EXPECT_EQ(rab_result.elements_sent[per_node - 1], count);  // the last local rank is a leaf
    }
    const SimulationResult direct_result =
        simulate(*find_algorithm(Collective::allreduce, "hier_direct"), topology, args, {.check_dependencies = false});
    ASSERT_TRUE(direct_result.correct) << direct_result.error;
    for (size_t rank = 0; rank < nodes * per_node; ++rank)
      for (const SimulationResult* result : {&rail_result, &direct_result})
        EXPECT_EQ(result->elements_sent[rank], 2 * (per_node - 1) * count / per_node + between_nodes / per_node)
            << nodes << "x" << per_node << " rank " << rank;
  }
}

// The prediction the report quotes: 4 ranks as 2 nodes of 2, 1M f32 elements.
TEST(HierarchicalTraffic, PredictedBytesForTwoNodesOfTwo) {
  CollectiveArgs args;
  args.collective = Collective::allreduce;
  args.count = size_t{1} << 20;
  const Topology topology = nodes_of({2, 2}, false);
  const size_t bytes = args.count * 4;
  EXPECT_EQ(predict_traffic(*find_algorithm(Collective::allreduce, "hier_rab"), topology, args).max_bytes_sent,
            2 * bytes);
  EXPECT_EQ(predict_traffic(*find_algorithm(Collective::allreduce, "hier_rail"), topology, args).max_bytes_sent,
            bytes + bytes / 2);
  EXPECT_EQ(predict_traffic(*find_algorithm(Collective::allreduce, "ring"), topology, args).max_bytes_sent,
            bytes + bytes / 2);
}

// What crosses between nodes, per rank: hier_rab only from leaders, 2(N-1)/N·count each;
// hier_rail from every rank, 2(N-1)/N·count/k each (k ranks per node).
TEST(HierarchicalTraffic, InterNodeVolumePerRank) {
  const size_t count = 3 * 5 * 7 * 8 * 16;
  for (const auto& [nodes, per_node] : std::vector<std::pair<size_t, size_t>>{{2, 2}, {4, 2}, {2, 4}, {3, 5}}) {
    const Topology topology = nodes_of(std::vector<int>(nodes, int(per_node)), true);
    CollectiveArgs args = small_segments(Collective::allreduce, count, false);
    args.segment_bytes = count;  // a few slices
    const size_t between_nodes = 2 * (nodes - 1) * count / nodes;
    for (const std::string& name : kHierarchical)
      for (int rank = 0; rank < topology.ranks(); ++rank) {
        size_t sent_to_other_nodes = 0;
        for (const Step& step : find_algorithm(Collective::allreduce, name)->build(topology, rank, args).steps)
          if (step.kind == StepKind::send &&
              topology.node_of_rank[size_t(step.peer)] != topology.node_of_rank[size_t(rank)])
            sent_to_other_nodes += step.source.count;
        const bool leader = rank < int(nodes);  // interleaved: ranks 0..nodes-1 open the nodes
        const size_t expected = name == "hier_rab" ? (leader ? between_nodes : 0) : between_nodes / per_node;
        EXPECT_EQ(sent_to_other_nodes, expected) << name << " " << nodes << "x" << per_node << " rank " << rank;
      }
  }
}

// The stages pipeline: the intra-node reduction of a slice (its receives into scratch, or its
// reductions of a peer's memory read in place) never
// waits, even indirectly, for a step that talks to another node, so it runs while earlier slices
// are still crossing between nodes.
TEST(HierarchicalSimulator, IntraNodeReductionNeverWaitsForTheNetwork) {
  const Topology topology = nodes_of({4, 4, 3}, false);
  CollectiveArgs args = small_segments(Collective::allreduce, 1000, false);
  args.segment_bytes = 40 * 4;  // many slices
  for (const std::string& name : kHierarchical)
    for (int rank = 0; rank < topology.ranks(); ++rank) {
      const Schedule schedule = find_algorithm(Collective::allreduce, name)->build(topology, rank, args);
      auto other_node = [&](const Step& step) {
        return (step.kind == StepKind::send || step.kind == StepKind::recv) &&
               topology.node_of_rank[size_t(step.peer)] != topology.node_of_rank[size_t(rank)];
      };
      // waits_for_network[i]: step i depends, directly or not, on an inter-node transfer.
      std::vector<bool> waits_for_network(schedule.steps.size(), false);
      size_t intra_node_reductions = 0;
      for (size_t i = 0; i < schedule.steps.size(); ++i) {
        const Step& step = schedule.steps[i];
        for (uint32_t dep : step.deps)
          if (waits_for_network[dep] || other_node(schedule.steps[dep])) waits_for_network[i] = true;
        const bool reduces_a_peers_data =
            (step.kind == StepKind::recv && step.target.buffer == BufferKind::scratch) ||
            step.kind == StepKind::read_reduce;
        if (reduces_a_peers_data && !other_node(step)) {
          ++intra_node_reductions;
          EXPECT_FALSE(waits_for_network[i]) << name << " rank " << rank << " step " << i;
        }
      }
      if (name != "hier_rab" || rank == 0) {
        EXPECT_GT(intra_node_reductions, 0u) << name << " rank " << rank;
      }
    }
}

// A rank of a small node owns a bigger chunk and carries it across the rails alone.
TEST(HierarchicalTraffic, RailLoadFollowsChunkOwnership) {
  const Algorithm* rail = find_algorithm(Collective::allreduce, "hier_rail");
  const size_t count = 1200;
  CollectiveArgs args = small_segments(Collective::allreduce, count, false);
  args.segment_bytes = size_t{1} << 20;  // one slice
  const Topology topology = nodes_of({1, 4}, false);
  const SimulationResult result = simulate(*rail, topology, args, {.check_dependencies = false});
  ASSERT_TRUE(result.correct) << result.error;
  // The lone rank allreduces the whole array with the 4 owners of its quarters: it sends count.
  EXPECT_EQ(result.elements_sent[0], count);
  // The node of 4: reduce-scatter and allgather (3/4 count each) plus its quarter across: 1/4.
  for (size_t rank = 1; rank < 5; ++rank) EXPECT_EQ(result.elements_sent[rank], 2 * 3 * count / 4 + count / 4);
}

}  // namespace
}  // namespace cclab
