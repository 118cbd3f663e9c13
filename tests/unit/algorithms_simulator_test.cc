// The simulator proves the tree, recursive and reduce-scatter/allgather schedules for every rank
// count up to 64, awkward element counts, in and out of place, with tiny segments so that every
// message is cut up; and the bytes each rank sends match DESIGN 3.7 where a formula applies.
#include <gtest/gtest.h>

#include <cmath>

#include "cclab/algorithm.h"
#include "cclab/simulator.h"

namespace cclab {
namespace {

constexpr int kMaxRanks = 64;

const Algorithm& algorithm(Collective collective, std::string_view name) {
  const Algorithm* found = find_algorithm(collective, name);
  if (found == nullptr) throw std::runtime_error("no algorithm " + std::string(name));
  return *found;
}

struct AlgorithmName {
  Collective collective;
  const char* name;
};
// The algorithms this file proves.
constexpr AlgorithmName kAlgorithms[] = {
    {Collective::allreduce, "tree"},
    {Collective::allreduce, "recursive_doubling"},
    {Collective::allreduce, "rabenseifner"},
    {Collective::reduce_scatter, "ring"},
    {Collective::reduce_scatter, "recursive_halving"},
    {Collective::allgather, "ring"},
    {Collective::allgather, "recursive_doubling"},
};

bool is_power_of_two(int value) { return (value & (value - 1)) == 0; }

// Element counts of the whole array: empty, smaller than the rank count, primes, 2^k ± 1.
std::vector<size_t> allreduce_counts(int ranks) {
  return {0, 1, size_t(ranks > 1 ? ranks - 1 : 2), size_t(ranks) + 1, 13, 31, 65};
}

// reduce_scatter and allgather take count = ranks · block (each rank's block); the same kinds of
// block sizes.
std::vector<size_t> block_collective_counts(int ranks) {
  std::vector<size_t> counts;
  for (size_t block : {0, 1, 2, 5, 9}) counts.push_back(block * size_t(ranks));
  return counts;
}

// Proves `algorithm` for 1..64 ranks, every count of `counts`, in and out of place, with 3-element
// segments and one to three receive slots.
void prove_for_every_rank_count(const Algorithm& algorithm, std::vector<size_t> (*counts)(int)) {
  for (int ranks = 1; ranks <= kMaxRanks; ++ranks) {
    for (size_t count : counts(ranks)) {
      for (bool inplace : {false, true}) {
        CollectiveArgs args;
        args.collective = algorithm.collective;
        args.count = count;
        args.inplace = inplace;
        args.op = ReduceOp::avg;
        args.segment_bytes = 3 * 4;  // 3 f32 elements per segment: many segments, uneven tails
        args.segments_in_flight = size_t(1 + ranks % 3);
        // The dependency proof is quadratic in steps; run it on the smaller cases.
        SimulationOptions options;
        options.check_dependencies = ranks <= 12 || count <= 16;
        const SimulationResult result = simulate(algorithm, Topology::single_node(ranks), args, options);
        ASSERT_TRUE(result.correct) << algorithm.name << " " << collective_name(algorithm.collective) << ", " << ranks
                                    << " ranks, count " << count << (inplace ? " in place" : "") << ": "
                                    << result.error;
      }
    }
  }
}

TEST(AlgorithmsSimulator, TreeAllreduceIsCorrect) {
  prove_for_every_rank_count(algorithm(Collective::allreduce, "tree"), allreduce_counts);
}

TEST(AlgorithmsSimulator, RecursiveDoublingAllreduceIsCorrect) {
  prove_for_every_rank_count(algorithm(Collective::allreduce, "recursive_doubling"), allreduce_counts);
}

TEST(AlgorithmsSimulator, RabenseifnerAllreduceIsCorrect) {
  prove_for_every_rank_count(algorithm(Collective::allreduce, "rabenseifner"), allreduce_counts);
}

TEST(AlgorithmsSimulator, RingReduceScatterIsCorrect) {
  prove_for_every_rank_count(algorithm(Collective::reduce_scatter, "ring"), block_collective_counts);
}

TEST(AlgorithmsSimulator, RecursiveHalvingReduceScatterIsCorrect) {
  prove_for_every_rank_count(algorithm(Collective::reduce_scatter, "recursive_halving"), block_collective_counts);
}

TEST(AlgorithmsSimulator, RingAllgatherIsCorrect) {
  prove_for_every_rank_count(algorithm(Collective::allgather, "ring"), block_collective_counts);
}

TEST(AlgorithmsSimulator, RecursiveDoublingAllgatherIsCorrect) {
  prove_for_every_rank_count(algorithm(Collective::allgather, "recursive_doubling"), block_collective_counts);
}

// Larger arrays in a few uneven segments of 97 elements, and in one segment of the default size.
TEST(AlgorithmsSimulator, EveryAlgorithmWithLargerSegments) {
  for (const auto& [collective, name] : kAlgorithms) {
    const Algorithm& each = algorithm(collective, name);
    for (int ranks : {2, 3, 5, 8, 12}) {
      for (size_t count : {size_t(200) * size_t(ranks), size_t(257) * size_t(ranks)}) {
        for (size_t segment_bytes : {size_t(4 * 97), size_t(1) << 20}) {
          CollectiveArgs args;
          args.collective = each.collective;
          args.count = count;
          args.segment_bytes = segment_bytes;
          const SimulationResult result = simulate(each, Topology::single_node(ranks), args);
          ASSERT_TRUE(result.correct) << each.name << " " << collective_name(each.collective) << ", " << ranks
                                      << " ranks, count " << count << ": " << result.error;
        }
      }
    }
  }
}

SimulationResult simulate_quickly(const Algorithm& algorithm, int ranks, size_t count) {
  CollectiveArgs args;
  args.collective = algorithm.collective;
  args.count = count;
  args.segment_bytes = 4096;
  return simulate(algorithm, Topology::single_node(ranks), args, SimulationOptions{.check_dependencies = false});
}

// DESIGN 3.7: a reduce-scatter or allgather sends (N-1)/N of the array per rank: exactly the
// N-1 blocks it forwards. Recursive halving needs a power-of-two rank count for that (the fold
// costs an extra rank's whole array); the distance-doubling allgather meets it for every count.
TEST(AlgorithmsSimulator, ReduceScatterAndAllgatherSendNMinusOneBlocks) {
  for (const auto& [collective, name] : kAlgorithms) {
    if (collective == Collective::allreduce) continue;
    const Algorithm& each = algorithm(collective, name);
    for (int ranks : {2, 3, 4, 5, 7, 8, 16}) {
      if (std::string_view(name) == "recursive_halving" && !is_power_of_two(ranks)) continue;
      for (size_t block : {size_t(0), size_t(1), size_t(1000), size_t(1031)}) {
        const size_t count = block * size_t(ranks);
        const SimulationResult result = simulate_quickly(each, ranks, count);
        ASSERT_TRUE(result.correct) << result.error;
        const size_t formula = size_t(ranks - 1) * count / size_t(ranks);
        for (int r = 0; r < ranks; ++r) {
          EXPECT_EQ(result.elements_sent[size_t(r)], formula) << name << ", " << ranks << " ranks, rank " << r;
          EXPECT_EQ(result.elements_received[size_t(r)], formula) << name << ", " << ranks << " ranks, rank " << r;
        }
      }
    }
  }
}

// Rabenseifner sends 2(N-1)/N of the array per rank for a power-of-two N, as the ring does: up to
// one element per block and step where blocks are uneven, and exactly when N divides the count.
TEST(AlgorithmsSimulator, RabenseifnerSendsAsMuchAsTheRing) {
  const Algorithm& rabenseifner = algorithm(Collective::allreduce, "rabenseifner");
  for (int ranks : {2, 4, 8, 16}) {
    for (size_t count : {size_t(0), size_t(1), size_t(1024), size_t(100003)}) {
      const SimulationResult result = simulate_quickly(rabenseifner, ranks, count);
      ASSERT_TRUE(result.correct) << result.error;
      const double formula = 2.0 * (ranks - 1) / ranks * double(count);
      EXPECT_LE(std::abs(double(result.max_elements_sent()) - formula), 2.0 * (ranks - 1))
          << ranks << " ranks, count " << count;
      if (count % size_t(ranks) == 0) {
        EXPECT_EQ(result.max_elements_sent(), 2 * size_t(ranks - 1) * count / size_t(ranks));
      }
      EXPECT_EQ(result.max_elements_sent(), result.max_elements_received());
    }
  }
}

// Recursive doubling sends the whole array once per step, once more for a rank that absorbed
// an extra one; the tree at most twice the array (a rank with two children in one tree).
TEST(AlgorithmsSimulator, RecursiveDoublingAndTreeVolumes) {
  for (int ranks : {2, 3, 4, 5, 6, 8, 13, 16}) {
    const size_t count = 10007;
    int steps = 0;
    while ((2 << steps) <= ranks) ++steps;
    const size_t extra_pass = is_power_of_two(ranks) ? 0 : 1;
    const SimulationResult doubling =
        simulate_quickly(algorithm(Collective::allreduce, "recursive_doubling"), ranks, count);
    ASSERT_TRUE(doubling.correct) << doubling.error;
    EXPECT_EQ(doubling.max_elements_sent(), (size_t(steps) + extra_pass) * count) << ranks << " ranks";

    const SimulationResult tree = simulate_quickly(algorithm(Collective::allreduce, "tree"), ranks, count);
    ASSERT_TRUE(tree.correct) << tree.error;
    const size_t larger_half = (count + 1) / 2;
    EXPECT_LE(tree.max_elements_sent(), 4 * larger_half) << ranks << " ranks";
    EXPECT_GE(tree.max_elements_sent(), count) << ranks << " ranks";
  }
}

// The numbers the report quotes: 4 ranks, 1 Mi f32 elements, default segments.
TEST(AlgorithmsSimulator, PredictedBytesForFourRanksAndOneMebiElements) {
  const size_t array_bytes = (size_t{1} << 20) * 4;
  const std::tuple<Collective, const char*, size_t> expected[] = {
      {Collective::allreduce, "ring", array_bytes * 3 / 2},
      {Collective::allreduce, "tree", array_bytes * 2},
      {Collective::allreduce, "recursive_doubling", array_bytes * 2},
      {Collective::allreduce, "rabenseifner", array_bytes * 3 / 2},
      {Collective::reduce_scatter, "ring", array_bytes * 3 / 4},
      {Collective::reduce_scatter, "recursive_halving", array_bytes * 3 / 4},
      {Collective::allgather, "ring", array_bytes * 3 / 4},
      {Collective::allgather, "recursive_doubling", array_bytes * 3 / 4},
  };
  for (const auto& [collective, name, bytes] : expected) {
    CollectiveArgs args;
    args.collective = collective;
    args.count = size_t{1} << 20;
    const PredictedTraffic traffic = predict_traffic(algorithm(collective, name), Topology::single_node(4), args);
    EXPECT_EQ(traffic.max_bytes_sent, bytes) << name << " " << collective_name(collective);
    EXPECT_EQ(traffic.max_bytes_received, bytes) << name << " " << collective_name(collective);
  }
}

}  // namespace
}  // namespace cclab
