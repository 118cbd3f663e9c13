// The code that enqueues device plans (enqueue_plan), run end to end on the host stand-in
// (ThreadDeviceQueue: ranks as threads, host memory, NCCL's in-order matching): for every
// hand-written algorithm of every collective, at 1 to 5 ranks (and 2 virtual nodes for the
// hierarchical ones), several dtypes, operators, counts and roots, in and out of place, every
// rank's output equals the host executor's over the loopback transport bit for bit, and the bytes
// counted at enqueue equal the bytes the host transport sent.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "cclab/algorithm.h"
#include "cclab/device_plan.h"
#include "cclab/device_queue.h"
#include "cclab/host_executor.h"
#include "check.h"
#include "transports/loopback/loopback_transport.h"

namespace cclab {
namespace {

struct RankResult {
  std::vector<std::byte> output;
  uint64_t bytes_sent = 0;
  std::string error;
};

// Runs `body(rank, input, output)` on one thread per rank with the call's buffers filled as
// --check fills them; returns each rank's output buffer.
std::vector<RankResult> run_on_threads(const Topology& topology, const CollectiveArgs& args,
                                       const std::function<uint64_t(int, const void*, void*)>& body) {
  const int ranks = topology.ranks();
  const size_t element = dtype_size(args.dtype);
  const BufferCounts counts = buffer_counts(args.collective, args.count, ranks);
  std::vector<RankResult> results(static_cast<size_t>(ranks));
  std::vector<std::thread> threads;
  for (int rank = 0; rank < ranks; ++rank)
    threads.emplace_back([&, rank] {
      RankResult& result = results[size_t(rank)];
      try {
        const InplaceOffsets offsets = inplace_offsets(args.collective, args.count, ranks, rank);
        std::vector<std::byte> input((std::max(counts.input, counts.output) + 1) * element), output = input;
        std::byte* in = input.data() + (args.inplace ? offsets.input * element : 0);
        std::byte* out = args.inplace ? input.data() + offsets.output * element : output.data();
        fill_check_input(in, counts.input, args.dtype, args.op, rank);
        result.bytes_sent = body(rank, in, out);
        result.output.assign(out, out + counts.output * element);
      } catch (const std::exception& error) {
        result.error = "rank " + std::to_string(rank) + ": " + error.what();
      }
    });
  for (auto& thread : threads) thread.join();
  return results;
}

std::vector<RankResult> run_host_executor(const Algorithm& algorithm, const Topology& topology,
                                          const CollectiveArgs& args) {
  auto fabric = std::make_shared<LoopbackFabric>(topology.ranks());
  return run_on_threads(topology, args, [&](int rank, const void* in, void* out) {
    LoopbackTransport transport(fabric, rank);
    transport.set_yield_when_idle(true);
    HostExecutor executor(transport);
    const CompiledSchedule schedule(device_schedule(algorithm, topology, rank, args));
    executor.run(schedule, {in, out}, args.dtype, args.op, 0, Deadline::after(30));
    return transport.counters().total_bytes_sent();
  });
}

std::vector<RankResult> run_device_plans(const Algorithm& algorithm, const Topology& topology,
                                         const CollectiveArgs& args) {
  std::vector<Schedule> schedules;
  for (int r = 0; r < topology.ranks(); ++r) schedules.push_back(device_schedule(algorithm, topology, r, args));
  const std::vector<DevicePlan> plans = compile_device_plans(schedules);
  auto fabric = ThreadDeviceQueue::make_fabric(topology.ranks());
  return run_on_threads(topology, args, [&](int rank, const void* in, void* out) {
    ThreadDeviceQueue queue(fabric, rank);
    const Schedule& schedule = schedules[size_t(rank)];
    std::vector<std::byte> scratch(schedule.scratch_count * dtype_size(args.dtype) + 1);
    enqueue_plan(queue, schedule, plans[size_t(rank)], {in, out, scratch.data()}, args.dtype, args.op);
    queue.synchronize(Deadline::after(30));
    return queue.traffic().counters().total_bytes_sent();
  });
}

TEST(DeviceQueue, PlansOnTheHostStandInEqualTheHostExecutorBitForBit) {
  for (const Algorithm& algorithm : algorithm_registry()) {
    const bool hierarchical = algorithm.name.rfind("hier_", 0) == 0;
    for (int ranks = 1; ranks <= 5; ++ranks)
      for (DataType dtype : {DataType::f32, DataType::bf16, DataType::i32})
        for (ReduceOp op : {ReduceOp::sum, ReduceOp::avg, ReduceOp::max})
          for (size_t per_rank : {size_t{1}, size_t{37}})
            for (bool inplace : {false, true}) {
              CollectiveArgs args;
              args.collective = algorithm.collective;
              const bool blocks = args.collective == Collective::reduce_scatter ||
                                  args.collective == Collective::allgather;
              args.count = blocks ? per_rank * size_t(ranks) : per_rank * 3;
              args.dtype = dtype;
              args.op = op;
              args.inplace = inplace;
              args.root = ranks - 1;
              args.segment_bytes = 16 * dtype_size(dtype);  // several segments
              Topology topology = Topology::single_node(ranks);
              if (hierarchical && ranks % 2 == 0)
                for (int r = 0; r < ranks; ++r) topology.node_of_rank[size_t(r)] = r / 2;
              const std::string what = std::string(collective_name(args.collective)) + " " + algorithm.name + ", " +
                                       std::to_string(ranks) + " ranks, " + std::string(dtype_name(dtype)) + " " +
                                       std::string(op_name(op)) + ", count " + std::to_string(args.count) +
                                       (inplace ? ", in place" : "");
              const auto host = run_host_executor(algorithm, topology, args);
              const auto device = run_device_plans(algorithm, topology, args);
              for (int r = 0; r < ranks; ++r) {
                ASSERT_EQ(host[size_t(r)].error, "") << what;
                ASSERT_EQ(device[size_t(r)].error, "") << what;
                const bool defined = args.collective != Collective::reduce || r == args.root;
                if (defined) {
                  EXPECT_TRUE(host[size_t(r)].output == device[size_t(r)].output) << what << ", rank " << r;
                }
                EXPECT_EQ(host[size_t(r)].bytes_sent, device[size_t(r)].bytes_sent) << what << ", rank " << r;
              }
            }
  }
}

// A pair whose messages do not agree in size is an error naming both ranks, not a silent mix-up.
TEST(DeviceQueue, MessagesOfTheWrongSizeAreAnError) {
  auto fabric = ThreadDeviceQueue::make_fabric(2);
  std::vector<float> data(8, 1.0f);
  std::string error;
  std::thread sender([&] {
    ThreadDeviceQueue queue(fabric, 0);
    queue.group_start();
    queue.send(1, data.data(), 8 * sizeof(float));
    queue.group_end();
    queue.synchronize(Deadline::after(10));
  });
  try {
    ThreadDeviceQueue queue(fabric, 1);
    std::vector<float> into(4);
    queue.group_start();
    queue.recv(0, into.data(), 4 * sizeof(float));
    queue.group_end();
    queue.synchronize(Deadline::after(10));
  } catch (const std::exception& caught) {
    error = caught.what();
  }
  sender.join();
  EXPECT_NE(error.find("expected 16 bytes from rank 0, the next message has 32"), std::string::npos) << error;
}

}  // namespace
}  // namespace cclab
