// Plans for NCCL point-to-point (cclab/device_plan.h), proved without a GPU: every hand-written
// algorithm of every collective, compiled for 1..32 ranks (hierarchical ones on equal, unequal and
// interleaved nodes), in and out of place, several counts and roots, turned back into Schedules
// with NCCL's semantics (each pair's messages matched in issue order, groups one after another)
// and run by the symbolic simulator: outputs exact, no deadlock, the same bytes as the Schedules.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cclab/algorithm.h"
#include "cclab/device_plan.h"
#include "cclab/error.h"
#include "cclab/simulator.h"
#include "topologies.h"

namespace cclab {
namespace {

std::string describe(const Algorithm& algorithm, const Topology& topology, const CollectiveArgs& args) {
  std::string nodes;
  for (int node : topology.node_of_rank) nodes += std::to_string(node);
  return std::string(collective_name(algorithm.collective)) + " " + algorithm.name + ", nodes of ranks " + nodes +
         ", count " + std::to_string(args.count) + ", root " + std::to_string(args.root) +
         (args.inplace ? ", in place" : "");
}

::testing::AssertionResult plans_are_proven(const Algorithm& algorithm, const Topology& topology,
                                            const CollectiveArgs& args) {
  std::vector<Schedule> schedules;
  for (int r = 0; r < topology.ranks(); ++r) schedules.push_back(device_schedule(algorithm, topology, r, args));
  std::vector<DevicePlan> plans;
  try {
    plans = compile_device_plans(schedules);
  } catch (const Error& error) {
    return ::testing::AssertionFailure() << describe(algorithm, topology, args) << ": " << error.what();
  }
  std::vector<Schedule> ordered;
  for (int r = 0; r < topology.ranks(); ++r)
    ordered.push_back(ordered_schedule(schedules[size_t(r)], plans[size_t(r)]));
  SimulationOptions options;
  options.check_dependencies = topology.ranks() <= 8;  // a group's messages must not touch what another writes
  const SimulationResult planned = simulate(topology, args, ordered, options);
  if (!planned.correct)
    return ::testing::AssertionFailure() << describe(algorithm, topology, args) << ": " << planned.error;
  const SimulationResult original = simulate(topology, args, schedules, SimulationOptions{false});
  if (planned.elements_sent != original.elements_sent || planned.elements_received != original.elements_received)
    return ::testing::AssertionFailure() << describe(algorithm, topology, args) << ": the plan moves other bytes";
  return ::testing::AssertionSuccess();
}

CollectiveArgs args_of(Collective collective, int ranks, size_t per_rank, bool inplace, int root) {
  CollectiveArgs args;
  args.collective = collective;
  const bool blocks = collective == Collective::reduce_scatter || collective == Collective::allgather;
  args.count = blocks ? per_rank * size_t(ranks) : per_rank;
  args.inplace = inplace;
  args.root = root;
  args.op = ReduceOp::avg;
  args.segment_bytes = 3 * 4;  // many segments, uneven tails
  args.segments_in_flight = size_t(1 + ranks % 3);
  return args;
}

bool hierarchical(const Algorithm& algorithm) { return algorithm.name.rfind("hier_", 0) == 0; }

TEST(DevicePlan, EveryAlgorithmIsProvenOnOneNodeForOneTo32Ranks) {
  for (const Algorithm& algorithm : algorithm_registry())
    for (int ranks = 1; ranks <= 32; ++ranks)
      for (size_t count : {size_t{0}, size_t{1}, size_t{7}, size_t(ranks + 2)})
        for (bool inplace : {false, true}) {
          const int root = ranks > 1 ? (ranks * 7 + int(count)) % ranks : 0;
          ASSERT_TRUE(plans_are_proven(algorithm, Topology::single_node(ranks),
                                       args_of(algorithm.collective, ranks, count, inplace, root)));
        }
}

TEST(DevicePlan, HierarchicalAlgorithmsAreProvenOnEqualUnequalAndInterleavedNodes) {
  const std::vector<std::vector<int>> shapes = {{2, 2}, {4, 4}, {3, 3, 3}, {3, 1, 2}, {1, 4}, {2, 3, 1, 2}};
  for (const Algorithm& algorithm : algorithm_registry()) {
    if (!hierarchical(algorithm)) continue;
    for (const auto& sizes : shapes)
      for (bool interleaved : {false, true})
        for (size_t count : {size_t{1}, size_t{13}})
          for (bool inplace : {false, true}) {
            const Topology topology = nodes_of(sizes, interleaved);
            ASSERT_TRUE(plans_are_proven(algorithm, topology,
                                         args_of(algorithm.collective, topology.ranks(), count, inplace, 0)));
          }
  }
}

// Within a group, each pair's messages are issued in tag order on both sides, and a message comes
// in a later group than a message it depends on.
TEST(DevicePlan, GroupsKeepEachPairsMessagesInTheSameOrderOnBothSides) {
  const Algorithm* ring = find_algorithm(Collective::allreduce, "ring");
  ASSERT_NE(ring, nullptr);
  const int ranks = 4;
  const CollectiveArgs args = args_of(Collective::allreduce, ranks, 40, false, 0);
  std::vector<Schedule> schedules;
  for (int r = 0; r < ranks; ++r) schedules.push_back(ring->build(Topology::single_node(ranks), r, args));
  const std::vector<DevicePlan> plans = compile_device_plans(schedules);
  for (int r = 0; r < ranks; ++r) {
    const int next = (r + 1) % ranks;
    std::vector<uint32_t> sent, received;
    for (const DevicePlan::Group& group : plans[size_t(r)].groups)
      for (uint32_t i : group.messages)
        if (schedules[size_t(r)].steps[i].kind == StepKind::send && schedules[size_t(r)].steps[i].peer == next)
          sent.push_back(schedules[size_t(r)].steps[i].tag);
    for (const DevicePlan::Group& group : plans[size_t(next)].groups)
      for (uint32_t i : group.messages)
        if (schedules[size_t(next)].steps[i].kind == StepKind::recv && schedules[size_t(next)].steps[i].peer == r)
          received.push_back(schedules[size_t(next)].steps[i].tag);
    EXPECT_FALSE(sent.empty());
    EXPECT_EQ(sent, received) << "ranks " << r << " -> " << next;
  }
}

// Schedules that cannot run on NCCL are refused, naming a step: a receive with no send, and two
// ranks that each receive before they send to each other.
TEST(DevicePlan, UnmatchedOrCyclicMessagesAreRefused) {
  const Region block{BufferKind::input, 0, 4};
  std::vector<Schedule> unmatched(2);
  unmatched[1].recv(0, 5, block);
  EXPECT_THROW(compile_device_plans(unmatched), Error);

  std::vector<Schedule> cyclic(2);
  for (int r = 0; r < 2; ++r) {
    const uint32_t received = cyclic[size_t(r)].recv(1 - r, 0, block);
    cyclic[size_t(r)].send(1 - r, 0, block, {received});
  }
  try {
    compile_device_plans(cyclic);
    ADD_FAILURE() << "a cycle was accepted";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("form a cycle"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace cclab
