// The host executor runs the tree, recursive-doubling and Rabenseifner allreduce schedules over
// the loopback transport (ranks as threads) on real data: results are exact for integers and
// within tolerance for floats, for every dtype and op, and the measured bytes are the predicted.
#include <gtest/gtest.h>

#include <thread>

#include "cclab/algorithm.h"
#include "cclab/host_executor.h"
#include "cclab/simulator.h"
#include "check.h"
#include "loopback_harness.h"
#include "transports/loopback/loopback_transport.h"

namespace cclab {
namespace {

constexpr const char* kAllreduceAlgorithms[] = {"tree", "recursive_doubling", "rabenseifner"};


TEST(AlgorithmsLoopback, AllreduceGivesExactResultsForEveryDtypeAndOp) {
  for (const char* name : kAllreduceAlgorithms) {
    const Algorithm& algorithm = *find_algorithm(Collective::allreduce, name);
    for (DataType type : kAllDataTypes) {
      for (ReduceOp op : kAllReduceOps) {
        for (int ranks : {1, 2, 3, 4, 6, 7}) {
          for (bool inplace : {false, true}) {
            CollectiveArgs args;
            args.dtype = type;
            args.op = op;
            args.count = 1031;  // prime: uneven halves, blocks and segments
            args.inplace = inplace;
            args.segment_bytes = 64;
            args.segments_in_flight = 3;
            for (const RankOutcome& outcome : run_allreduce_on_loopback(algorithm, ranks, args)) {
              ASSERT_EQ(outcome.error, "") << name;
              EXPECT_EQ(outcome.wrong, 0u) << name << " " << dtype_name(type) << " " << op_name(op) << " " << ranks
                                           << " ranks" << (inplace ? " in place" : "");
            }
          }
        }
      }
    }
  }
}

TEST(AlgorithmsLoopback, AllreduceCountersEqualThePrediction) {
  for (const char* name : kAllreduceAlgorithms) {
    const Algorithm& algorithm = *find_algorithm(Collective::allreduce, name);
    for (int ranks : {2, 3, 4, 5, 8}) {
      CollectiveArgs args;
      args.count = 60 * 1024 + 7;
      args.segment_bytes = 8192;
      const PredictedTraffic predicted = predict_traffic(algorithm, Topology::single_node(ranks), args);
      uint64_t most_sent = 0, most_received = 0;
      for (const RankOutcome& outcome : run_allreduce_on_loopback(algorithm, ranks, args)) {
        ASSERT_EQ(outcome.error, "") << name;
        EXPECT_EQ(outcome.wrong, 0u) << name << " " << ranks << " ranks";
        most_sent = std::max(most_sent, outcome.bytes_sent);
        most_received = std::max(most_received, outcome.bytes_received);
      }
      EXPECT_EQ(most_sent, predicted.max_bytes_sent) << name << " " << ranks << " ranks";
      EXPECT_EQ(most_received, predicted.max_bytes_received) << name << " " << ranks << " ranks";
    }
  }
}

TEST(AlgorithmsLoopback, LargeArrayWithManySegmentsInFlight) {
  for (const char* name : kAllreduceAlgorithms) {
    CollectiveArgs args;
    args.count = (size_t{1} << 20) + 3;
    args.segment_bytes = 64 * 1024;
    args.segments_in_flight = 8;
    for (const RankOutcome& outcome :
         run_allreduce_on_loopback(*find_algorithm(Collective::allreduce, name), 3, args, 1)) {
      ASSERT_EQ(outcome.error, "") << name;
      EXPECT_EQ(outcome.wrong, 0u) << name;
    }
  }
}

}  // namespace
}  // namespace cclab
