// The host executor runs ring schedules over the loopback transport (ranks as threads): results
// are exact for integers and within tolerance for floats, for every dtype and op.
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

const Algorithm& ring() { return *find_algorithm(Collective::allreduce, "ring"); }


TEST(LoopbackAllreduce, RingGivesExactResultsForEveryDtypeAndOp) {
  for (DataType type : kAllDataTypes) {
    for (ReduceOp op : kAllReduceOps) {
      for (int ranks : {1, 2, 3, 4}) {
        for (bool inplace : {false, true}) {
          CollectiveArgs args;
          args.dtype = type;
          args.op = op;
          args.count = 1031;  // prime: uneven chunks and segments
          args.inplace = inplace;
          args.segment_bytes = 64;
          for (const RankOutcome& outcome : run_allreduce_on_loopback(ring(), ranks, args)) {
            ASSERT_EQ(outcome.error, "");
            EXPECT_EQ(outcome.wrong, 0u) << dtype_name(type) << " " << op_name(op) << " " << ranks << " ranks"
                                         << (inplace ? " in place" : "");
          }
        }
      }
    }
  }
}

TEST(LoopbackAllreduce, CountersEqualThePredictionAndTheFormula) {
  for (int ranks : {2, 3, 4, 5}) {
    CollectiveArgs args;
    args.count = 60 * 1024;  // divisible by every rank count here
    args.segment_bytes = 8192;
    const PredictedTraffic predicted =
        predict_traffic(*find_algorithm(Collective::allreduce, "ring"), Topology::single_node(ranks), args);
    const uint64_t formula = 2 * uint64_t(ranks - 1) * args.count * 4 / uint64_t(ranks);
    EXPECT_EQ(predicted.max_bytes_sent, formula);
    for (const RankOutcome& outcome : run_allreduce_on_loopback(ring(), ranks, args)) {
      ASSERT_EQ(outcome.error, "");
      EXPECT_EQ(outcome.wrong, 0u);
      EXPECT_EQ(outcome.bytes_sent, formula);
      EXPECT_EQ(outcome.bytes_received, formula);
    }
  }
}

TEST(LoopbackAllreduce, LargeArrayWithManySegmentsInFlight) {
  CollectiveArgs args;
  args.count = (size_t{4} << 20) + 3;
  args.segment_bytes = 64 * 1024;
  args.segments_in_flight = 8;
  for (const RankOutcome& outcome : run_allreduce_on_loopback(ring(), 3, args, 1)) {
    ASSERT_EQ(outcome.error, "");
    EXPECT_EQ(outcome.wrong, 0u);
  }
}

}  // namespace
}  // namespace cclab

namespace cclab {
namespace {

// Several calls in flight at once (as gradient buckets during backward), polled in turn.
TEST(LoopbackAllreduce, ConcurrentCallsCompleteIndependently) {
  constexpr int kRanks = 3, kCalls = 4;
  auto fabric = std::make_shared<LoopbackFabric>(kRanks);
  const Algorithm& ring = *find_algorithm(Collective::allreduce, "ring");
  std::vector<size_t> wrong(kRanks, 0);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < kRanks; ++rank) {
    threads.emplace_back([&, rank] {
      LoopbackTransport transport(fabric, rank);
      transport.set_yield_when_idle(true);
      HostExecutor executor(transport);
      CollectiveArgs args;
      args.count = 5000;
      args.segment_bytes = 1024;
      const CompiledSchedule schedule(ring.build(Topology::single_node(kRanks), rank, args));
      std::vector<std::vector<float>> inputs(kCalls, std::vector<float>(args.count)), outputs = inputs;
      std::vector<std::unique_ptr<PendingCollective>> calls;
      for (int call = 0; call < kCalls; ++call) {
        fill_check_input(inputs[size_t(call)].data(), args.count, DataType::f32, ReduceOp::sum, rank);
        calls.push_back(executor.start(schedule, {inputs[size_t(call)].data(), outputs[size_t(call)].data()},
                                       DataType::f32, ReduceOp::sum, uint64_t(call)));
      }
      for (int call = kCalls - 1; call >= 0; --call) calls[size_t(call)]->wait(Deadline::after(30));
      for (const auto& output : outputs)
        wrong[size_t(rank)] += count_wrong_allreduce(output.data(), args.count, DataType::f32, ReduceOp::sum, kRanks);
    });
  }
  for (auto& thread : threads) thread.join();
  for (size_t w : wrong) EXPECT_EQ(w, 0u);
}

}  // namespace
}  // namespace cclab
