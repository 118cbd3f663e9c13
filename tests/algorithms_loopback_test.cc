// The host executor runs the tree, recursive-doubling and Rabenseifner allreduce schedules over
// the loopback transport (ranks as threads) on real data: results are exact for integers and
// within tolerance for floats, for every dtype and op, and the measured bytes are the predicted.
#include <gtest/gtest.h>

#include <thread>

#include "cclab/algorithm.h"
#include "cclab/host_executor.h"
#include "cclab/simulator.h"
#include "check.h"
#include "transports/loopback/loopback_transport.h"

namespace cclab {
namespace {

constexpr const char* kAllreduceAlgorithms[] = {"tree", "recursive_doubling", "rabenseifner"};

struct RankOutcome {
  size_t wrong = 0;
  uint64_t bytes_sent = 0, bytes_received = 0;
  std::string error;
};

std::vector<RankOutcome> run_allreduce(const Algorithm& algorithm, int ranks, const CollectiveArgs& args,
                                       int calls = 2) {
  auto fabric = std::make_shared<LoopbackFabric>(ranks);
  const Topology topology = Topology::single_node(ranks);
  std::vector<RankOutcome> outcomes{size_t(ranks)};
  std::vector<std::thread> threads;
  for (int rank = 0; rank < ranks; ++rank) {
    threads.emplace_back([&, rank] {
      RankOutcome& outcome = outcomes[size_t(rank)];
      try {
        LoopbackTransport transport(fabric, rank);
        transport.set_yield_when_idle(true);
        HostExecutor executor(transport);
        const CompiledSchedule schedule(algorithm.build(topology, rank, args));
        const size_t bytes = args.count * dtype_size(args.dtype);
        std::vector<std::byte> input(bytes + 1), output(bytes + 1);
        void* out = args.inplace ? input.data() : output.data();
        // Several calls in a row: sequence numbers keep their messages apart, buffers are reused.
        for (int call = 0; call < calls; ++call) {
          fill_check_input(input.data(), args.count, args.dtype, args.op, rank);
          executor.run(schedule, {input.data(), out}, args.dtype, args.op, uint64_t(call), Deadline::after(30));
          outcome.wrong += count_wrong_allreduce(out, args.count, args.dtype, args.op, ranks);
        }
        outcome.bytes_sent = transport.counters().total_bytes_sent() / uint64_t(calls);
        outcome.bytes_received = transport.counters().total_bytes_received() / uint64_t(calls);
      } catch (const std::exception& error) {
        outcome.error = error.what();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  return outcomes;
}

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
            for (const RankOutcome& outcome : run_allreduce(algorithm, ranks, args)) {
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
      for (const RankOutcome& outcome : run_allreduce(algorithm, ranks, args)) {
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
    for (const RankOutcome& outcome : run_allreduce(*find_algorithm(Collective::allreduce, name), 3, args, 1)) {
      ASSERT_EQ(outcome.error, "") << name;
      EXPECT_EQ(outcome.wrong, 0u) << name;
    }
  }
}

}  // namespace
}  // namespace cclab
