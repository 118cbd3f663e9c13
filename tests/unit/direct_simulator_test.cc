// The direct algorithms (peer reads within a node) proven by the simulator for every rank count up
// to 64, awkward counts, every root, in and out of place; the same schedules carried by the
// transport instead (through_transport, where ranks cannot address each other's memory) proven
// too; their volume as DESIGN 3.7 has it; and the simulator's refusals of reads it cannot allow.
#include <gtest/gtest.h>

#include "cclab/algorithm.h"
#include "cclab/cost_model.h"
#include "cclab/simulator.h"

namespace cclab {
namespace {

const Algorithm& direct(Collective collective) {
  const Algorithm* found = find_algorithm(collective, "direct");
  if (found == nullptr) throw std::runtime_error("no direct " + std::string(collective_name(collective)));
  return *found;
}

constexpr Collective kCollectives[] = {Collective::allreduce, Collective::reduce_scatter, Collective::allgather,
                                       Collective::broadcast, Collective::reduce};

bool takes_blocks(Collective collective) {
  return collective == Collective::reduce_scatter || collective == Collective::allgather;
}

// Whole-array counts: empty, fewer than the ranks, primes; for the block collectives, ranks times
// such block sizes.
std::vector<size_t> counts_for(Collective collective, int ranks) {
  if (takes_blocks(collective)) return {0, size_t(ranks), 2 * size_t(ranks), 7 * size_t(ranks)};
  return {0, 1, size_t(ranks + 1), 13, 67};
}

std::vector<int> roots_for(Collective collective, int ranks) {
  if (collective != Collective::broadcast && collective != Collective::reduce) return {0};
  if (ranks == 1) return {0};
  return {0, ranks / 2, ranks - 1};
}

CollectiveArgs args_for(Collective collective, size_t count, bool inplace, int root) {
  CollectiveArgs args;
  args.collective = collective;
  args.count = count;
  args.inplace = inplace;
  args.root = root;
  args.op = ReduceOp::avg;
  args.segment_bytes = 2 * 4;  // 2 f32 elements per chunk: many chunks, up to the most a block has
  return args;
}

std::vector<const Algorithm*> every_direct_algorithm() {
  std::vector<const Algorithm*> algorithms;
  for (Collective collective : kCollectives) algorithms.push_back(&direct(collective));
  return algorithms;
}

std::vector<int> rank_counts(int first, int last) {
  std::vector<int> counts;
  for (int ranks = first; ranks <= last; ++ranks) counts.push_back(ranks);
  return counts;
}

// `algorithms` for each of `rank_counts`, as written and through the transport.
void prove(const std::vector<const Algorithm*>& algorithms, const std::vector<int>& rank_counts) {
  for (const Algorithm* algorithm : algorithms)
    for (int ranks : rank_counts)
      for (size_t count : counts_for(algorithm->collective, ranks))
        for (int root : roots_for(algorithm->collective, ranks))
          for (bool inplace : {false, true}) {
            const Collective collective = algorithm->collective;
            const CollectiveArgs args = args_for(collective, count, inplace, root);
            const Topology topology = Topology::single_node(ranks);
            SimulationOptions options;
            options.check_dependencies = ranks <= 12 || count <= 16;
            std::vector<Schedule> schedules, carried;
            for (int r = 0; r < ranks; ++r) {
              schedules.push_back(algorithm->build(topology, r, args));
              carried.push_back(through_transport(schedules.back()));
            }
            const std::string what = algorithm->name + " " + std::string(collective_name(collective)) + ", " +
                                     std::to_string(ranks) + " ranks, count " + std::to_string(count) + ", root " +
                                     std::to_string(root) + (inplace ? " in place" : "");
            const SimulationResult read = simulate(topology, args, schedules, options);
            ASSERT_TRUE(read.correct) << what << ": " << read.error;
            const SimulationResult sent = simulate(topology, args, carried, options);
            ASSERT_TRUE(sent.correct) << what << " through the transport: " << sent.error;
            EXPECT_EQ(read.elements_sent, sent.elements_sent) << what;
          }
}

TEST(DirectSimulator, EveryCollectiveUpToTwelveRanks) { prove(every_direct_algorithm(), rank_counts(1, 12)); }
TEST(DirectSimulator, EveryCollectiveFromThirteenToSixtyFourRanks) {
  prove(every_direct_algorithm(), rank_counts(13, 64));
}

// Each rank folds every input of the whole array: the proof grows as N^3 per element, so beyond 16
// ranks it takes the rank counts around powers of two.
TEST(DirectSimulator, OneShotAllreduce) {
  std::vector<int> counts = rank_counts(1, 16);
  counts.insert(counts.end(), {31, 32, 33, 63, 64});
  prove({find_algorithm(Collective::allreduce, "oneshot")}, counts);
}

// On several nodes each node's ranks read each other's memory and the reads between nodes go
// through the transport (ScheduledImplementation's conversion): the direct algorithms proven so,
// for equal, unequal and interleaved nodes.
TEST(DirectSimulator, SeveralNodesReadInsideANodeOnly) {
  for (const std::vector<int>& node_of_rank : std::vector<std::vector<int>>{
           {0, 0, 1, 1}, {0, 1, 0, 1, 0}, {0, 0, 0, 1}, {0, 1, 1, 2, 2, 2}, {3, 1, 3, 3, 1, 0, 0}}) {
    Topology topology;
    topology.node_of_rank = node_of_rank;
    const int ranks = topology.ranks();
    std::vector<const Algorithm*> algorithms = every_direct_algorithm();
    algorithms.push_back(find_algorithm(Collective::allreduce, "oneshot"));
    algorithms.push_back(find_algorithm(Collective::allreduce, "hier_direct"));
    for (const Algorithm* algorithm : algorithms)
      for (size_t count : counts_for(algorithm->collective, ranks))
        for (int root : roots_for(algorithm->collective, ranks))
          for (bool inplace : {false, true}) {
            const CollectiveArgs args = args_for(algorithm->collective, count, inplace, root);
            std::vector<Schedule> schedules;
            for (int r = 0; r < ranks; ++r)
              schedules.push_back(reads_within_nodes(algorithm->build(topology, r, args), topology, r));
            const SimulationResult result = simulate(topology, args, schedules);
            ASSERT_TRUE(result.correct) << algorithm->name << " " << collective_name(algorithm->collective) << ", "
                                        << ranks << " ranks, count " << count << ", root " << root
                                        << (inplace ? " in place: " : ": ") << result.error;
          }
  }
}

TEST(DirectSimulator, VolumeAsTheFormulasHaveIt) {
  const size_t count = 1 << 20;
  for (int ranks : {2, 3, 4, 8}) {
    const Topology topology = Topology::single_node(ranks);
    const double n = ranks;
    auto sent_by = [&](Collective collective, int rank) {
      CollectiveArgs args = args_for(collective, count, false, 0);
      args.segment_bytes = 1 << 20;
      return direct(collective).build(topology, rank, args).elements_sent();
    };
    // Blocks are balanced: a rank's share differs from count/N by under one element per block.
    EXPECT_NEAR(double(sent_by(Collective::allreduce, 1)), 2 * (n - 1) / n * double(count), 2 * n);
    EXPECT_NEAR(double(sent_by(Collective::reduce_scatter, 1)), (n - 1) / n * double(count), n);
    EXPECT_NEAR(double(sent_by(Collective::allgather, 1)), (n - 1) / n * double(count), n);
    EXPECT_EQ(sent_by(Collective::broadcast, 0), size_t(ranks - 1) * count);
    EXPECT_EQ(sent_by(Collective::broadcast, 1), 0u);
  }
}

TEST(DirectSimulator, RefusesReadsAcrossNodesAndTagsBeyondTheFlagSlots) {
  const CollectiveArgs args = args_for(Collective::allgather, 2, false, 0);
  Topology two_nodes;
  two_nodes.node_of_rank = {0, 1};
  std::vector<Schedule> schedules;
  for (int r = 0; r < 2; ++r) schedules.push_back(direct(Collective::allgather).build(two_nodes, r, args));
  SimulationResult result = simulate(two_nodes, args, schedules);
  EXPECT_FALSE(result.correct);
  EXPECT_NE(result.error.find("another node"), std::string::npos) << result.error;

  const Topology one_node = Topology::single_node(2);
  for (Schedule& schedule : schedules)
    for (Step& step : schedule.steps)
      if (step.kind == StepKind::expose || step.kind == StepKind::read) step.tag = kPeerReadTags;
  result = simulate(one_node, args, schedules);
  EXPECT_FALSE(result.correct);
  EXPECT_NE(result.error.find("flag slots"), std::string::npos) << result.error;
}

TEST(DirectSimulator, AnExposedRegionMustNotChangeBeforeItIsRead) {
  // Rank 0 exposes its input and overwrites it (in place) before the read is ordered after it.
  const CollectiveArgs args = args_for(Collective::allgather, 2, true, 0);
  Schedule owner;
  owner.expose(1, 0, {BufferKind::input, 0, 1});
  owner.read(1, 1, {BufferKind::output, 1, 1});
  owner.copy({BufferKind::input, 0, 1}, {BufferKind::output, 1, 1}, {1});
  Schedule reader;
  reader.expose(0, 1, {BufferKind::input, 0, 1});
  reader.read(0, 0, {BufferKind::output, 0, 1});
  const SimulationResult result = simulate(Topology::single_node(2), args, {owner, reader});
  EXPECT_FALSE(result.correct);
  EXPECT_NE(result.error.find("races"), std::string::npos) << result.error;
}

TEST(DirectSimulator, TheCostModelTimesPeerReadsOnTheReadersCore) {
  CostProfile profile;
  for (RegimeCost* regime : {&profile.cached, &profile.streaming}) {
    regime->intra_node = {1.0, 1e-4};
    regime->gamma_us_per_byte = 1e-4;
    regime->copy_us_per_byte = 0.5e-4;
  }
  CollectiveArgs args = args_for(Collective::allreduce, 1 << 20, false, 0);
  args.segment_bytes = 1 << 20;
  const Topology topology = Topology::single_node(2);
  const double direct_us = predict_time_us(direct(Collective::allreduce), topology, args, profile);
  const double ring_us = predict_time_us(*find_algorithm(Collective::allreduce, "ring"), topology, args, profile);
  // The ring's receiver copies half the array then reduces it; the direct reader reduces it where
  // it lies: the reduction and the copy of the result, against transfer, reduction and transfer.
  EXPECT_GT(direct_us, 0);
  EXPECT_LT(direct_us, ring_us);
}

}  // namespace
}  // namespace cclab
