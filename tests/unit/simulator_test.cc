// The simulator proves hand-written schedules for many rank counts and element counts.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "cclab/algorithm.h"
#include "cclab/simulator.h"

namespace cclab {
namespace {

std::vector<size_t> interesting_counts(int ranks) {
  std::vector<size_t> counts = {0, 1, size_t(ranks > 1 ? ranks - 1 : 1), size_t(ranks), size_t(ranks) + 1, 7, 13, 31,
                                63, 64, 65, 127, 129};
  return counts;
}

TEST(Simulator, RingAllreduceIsCorrectForEveryRankAndElementCount) {
  const Algorithm* ring = find_algorithm(Collective::allreduce, "ring");
  ASSERT_NE(ring, nullptr);
  for (int ranks = 1; ranks <= 64; ++ranks) {
    for (size_t count : interesting_counts(ranks)) {
      for (bool inplace : {false, true}) {
        CollectiveArgs args;
        args.count = count;
        args.inplace = inplace;
        args.segment_bytes = 3 * 4;  // 3 f32 elements per segment: many segments, uneven tails
        args.segments_in_flight = 2;
        // The dependency proof is quadratic in steps; run it on the smaller cases.
        SimulationOptions options;
        options.check_dependencies = ranks <= 16 || count <= 16;
        const SimulationResult result = simulate(*ring, Topology::single_node(ranks), args, options);
        ASSERT_TRUE(result.correct) << ranks << " ranks, count " << count << (inplace ? " in place" : "") << ": "
                                    << result.error;
      }
    }
  }
}

TEST(Simulator, RingAllreduceWithOneSegmentPerChunk) {
  const Algorithm* ring = find_algorithm(Collective::allreduce, "ring");
  for (int ranks : {2, 3, 5, 8, 17}) {
    for (size_t count : {size_t(1000), size_t(1021), size_t(1025)}) {
      CollectiveArgs args;
      args.count = count;
      const SimulationResult result = simulate(*ring, Topology::single_node(ranks), args);
      ASSERT_TRUE(result.correct) << result.error;
    }
  }
}

// DESIGN 3.7: each rank sends 2(N-1)/N of the array, exactly the chunks it forwards.
TEST(Simulator, RingAllreduceSendsTwiceTheChunksItForwards) {
  const Algorithm* ring = find_algorithm(Collective::allreduce, "ring");
  for (int ranks : {2, 3, 4, 7}) {
    for (size_t count : {size_t(0), size_t(1), size_t(1024), size_t(100003)}) {
      CollectiveArgs args;
      args.count = count;
      args.segment_bytes = 4096;
      const SimulationResult result =
          simulate(*ring, Topology::single_node(ranks), args, SimulationOptions{.check_dependencies = false});
      ASSERT_TRUE(result.correct) << result.error;
      // Chunk rounding: in each slice of ranks x 1024 elements a rank forwards at most one element
      // more than the average per step.
      const double slices = std::max(1.0, std::ceil(double(count) / (1024.0 * ranks)));
      const double formula = 2.0 * (ranks - 1) / ranks * double(count);
      EXPECT_LE(std::abs(double(result.max_elements_sent()) - formula), 2.0 * (ranks - 1) * slices)
          << ranks << " ranks, count " << count;
      EXPECT_EQ(result.max_elements_sent(), result.max_elements_received());
      if (count % size_t(ranks) == 0) {
        EXPECT_EQ(result.max_elements_sent(), 2 * size_t(ranks - 1) * count / size_t(ranks));
      }
      const PredictedTraffic traffic = predict_traffic(*ring, Topology::single_node(ranks), args);
      EXPECT_EQ(traffic.max_bytes_sent, result.max_elements_sent() * 4);
    }
  }
}

// The simulator itself must catch broken schedules, or its proofs mean nothing.
TEST(Simulator, RejectsAScheduleThatLosesAContribution) {
  const Algorithm* ring = find_algorithm(Collective::allreduce, "ring");
  CollectiveArgs args;
  args.count = 12;
  std::vector<Schedule> schedules;
  for (int r = 0; r < 3; ++r) schedules.push_back(ring->build(Topology::single_node(3), r, args));
  for (Step& step : schedules[1].steps)
    if (step.kind == StepKind::reduce) {
      step.kind = StepKind::copy;  // drops this rank's own input
      break;
    }
  const SimulationResult result = simulate(Topology::single_node(3), args, schedules);
  EXPECT_FALSE(result.correct);
  EXPECT_NE(result.error.find("expected"), std::string::npos) << result.error;
}

TEST(Simulator, RejectsAMissingDependency) {
  const Algorithm* ring = find_algorithm(Collective::allreduce, "ring");
  CollectiveArgs args;
  args.count = 12;
  std::vector<Schedule> schedules;
  for (int r = 0; r < 3; ++r) schedules.push_back(ring->build(Topology::single_node(3), r, args));
  for (Step& step : schedules[0].steps)
    if (step.kind == StepKind::reduce) {
      step.deps.clear();  // reduces before the data arrived
      break;
    }
  const SimulationResult result = simulate(Topology::single_node(3), args, schedules);
  EXPECT_FALSE(result.correct);
  EXPECT_NE(result.error.find("races"), std::string::npos) << result.error;
}

TEST(Simulator, RejectsADeadlock) {
  CollectiveArgs args;
  args.count = 2;
  std::vector<Schedule> schedules(2);
  // Both ranks wait to receive before sending: nobody ever sends.
  for (int r = 0; r < 2; ++r) {
    const uint32_t received = schedules[size_t(r)].recv(1 - r, 0, {BufferKind::output, 0, 2});
    schedules[size_t(r)].send(1 - r, 0, {BufferKind::input, 0, 2}, {received});
  }
  const SimulationResult result = simulate(Topology::single_node(2), args, schedules);
  EXPECT_FALSE(result.correct);
  EXPECT_NE(result.error.find("deadlock"), std::string::npos) << result.error;
}

}  // namespace
}  // namespace cclab
