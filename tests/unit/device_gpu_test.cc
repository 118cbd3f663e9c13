// The device layer on a GPU (cclab/device.h): NCCL's collectives, and every hand-written algorithm
// as device plans over device-loopback at 2, 3 and 4 ranks (threads sharing the GPU) and over NCCL
// at one rank, each on GPU memory, checked as `bench --check` checks, with the bytes counted at
// enqueue equal to the simulator's. Without a usable GPU every test skips and says why (or fails,
// under CCLAB_REQUIRE_GPU, as ci/gpu-check.sh runs it).
#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cclab/device.h"
#include "cclab/implementation.h"
#include "check.h"
#include "bootstrap/thread_bootstrap.h"
#include "thread_ranks.h"

namespace cclab {
namespace {

class DeviceGpu : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string reason = cuda_unavailable_reason();
    if (reason.empty()) reason = nccl_unavailable_reason();
    if (reason.empty()) return;
    if (std::getenv("CCLAB_REQUIRE_GPU") != nullptr) FAIL() << reason;
    GTEST_SKIP() << reason;
  }
};

// One call of `impl` as the bench makes it, on GPU memory: inputs filled for --check, the output
// brought back and its wrong elements counted. Returns the wrong elements.
size_t run_checked(Implementation& impl, MemorySpace& memory, const CollectiveArgs& args, int rank, int ranks) {
  const size_t element = dtype_size(args.dtype);
  const BufferCounts counts = buffer_counts(args.collective, args.count, ranks);
  impl.prepare(args);
  const std::shared_ptr<std::byte> input = memory.allocate(counts.input * element);
  const std::shared_ptr<std::byte> output = memory.allocate(counts.output * element);
  std::vector<std::byte> host(std::max(counts.input, counts.output) * element + 1);
  fill_check_input(host.data(), counts.input, args.dtype, args.op, rank);
  memory.copy_in(input.get(), host.data(), counts.input * element);
  std::unique_ptr<IterationClock> clock = impl.clock();
  for (int i = 0; i < 2; ++i) {  // twice: a plan must leave its memory ready for the next call
    clock->start();
    impl.run(input.get(), output.get(), Deadline::after(20));
    clock->stop();
  }
  impl.wait(Deadline::after(20));
  for (double us : clock->take_times_us(Deadline::after(20))) EXPECT_GT(us, 0);
  memory.copy_out(host.data(), output.get(), counts.output * element);
  return count_wrong(args.collective, host.data(), args.count, args.dtype, args.op, ranks, rank, args.root);
}

// Runs `body(bootstrap)` on `ranks` threads of one job; returns the first failure, "" when all finished.
std::string run_threads_of_job(int ranks, const std::function<void(Bootstrap&)>& body) {
  auto job = std::make_shared<ThreadJob>(ranks);
  return run_threads(ranks, [&](int rank) {
    ThreadBootstrap bootstrap(job, rank);
    body(bootstrap);
  });
}

CollectiveArgs args_for(Collective collective, size_t count, DataType type, ReduceOp op, int ranks) {
  CollectiveArgs args;
  args.collective = collective;
  args.count = count / size_t(ranks) * size_t(ranks);
  args.dtype = type;
  args.op = op;
  args.root = ranks - 1;
  args.segment_bytes = 4096;  // several segments in the pipelined algorithms
  return args;
}

constexpr Collective kCollectives[] = {Collective::allreduce, Collective::broadcast, Collective::reduce,
                                       Collective::reduce_scatter, Collective::allgather};

TEST_F(DeviceGpu, NcclCollectivesAtOneRank) {
  const Topology topology = Topology::single_node(1);
  const std::string error = run_threads_of_job(1, [&](Bootstrap& bootstrap) {
    auto device = open_device(bootstrap, topology, 20);
    auto memory = device_memory(device);
    for (Collective collective : kCollectives)
      for (DataType type : {DataType::f32, DataType::bf16, DataType::i32})
        for (size_t count : {size_t{1}, size_t{1000}, size_t{1} << 20}) {
          auto impl = make_nccl_collective(collective, device);
          const CollectiveArgs args = args_for(collective, count, type, ReduceOp::sum, 1);
          EXPECT_EQ(run_checked(*impl, *memory, args, 0, 1), 0u)
              << collective_name(collective) << " " << dtype_name(type) << " " << count;
        }
  });
  EXPECT_EQ(error, "");
}

TEST_F(DeviceGpu, EveryHandWrittenAlgorithmOverNcclAtOneRank) {
  const Topology topology = Topology::single_node(1);
  const std::string error = run_threads_of_job(1, [&](Bootstrap& bootstrap) {
    auto device = open_device(bootstrap, topology, 20);
    auto memory = device_memory(device);
    for (const Algorithm& algorithm : algorithm_registry()) {
      auto impl = make_nccl_scheduled(algorithm, device);
      const CollectiveArgs args = args_for(algorithm.collective, 4099, DataType::f32, ReduceOp::sum, 1);
      EXPECT_EQ(run_checked(*impl, *memory, args, 0, 1), 0u) << algorithm.name;
    }
  });
  EXPECT_EQ(error, "");
}

TEST_F(DeviceGpu, EveryHandWrittenAlgorithmOverDeviceLoopback) {
  for (int ranks : {2, 3, 4})
    for (const Algorithm& algorithm : algorithm_registry())
      for (const auto& [type, op] : {std::pair{DataType::f32, ReduceOp::sum}, std::pair{DataType::bf16, ReduceOp::max},
                                     std::pair{DataType::i32, ReduceOp::avg}}) {
        // Hierarchical algorithms on two virtual nodes where the ranks allow it.
        Topology topology = Topology::single_node(ranks);
        if (ranks == 4)
          for (int r = 0; r < ranks; ++r) topology.node_of_rank[size_t(r)] = r / 2;
        auto fabric = make_loopback_fabric(ranks);
        const CollectiveArgs args = args_for(algorithm.collective, 30011, type, op, ranks);
        const PredictedTraffic predicted = predict_traffic(algorithm, topology, args);
        const std::string error = run_threads_of_job(ranks, [&](Bootstrap& bootstrap) {
          auto device = open_device(bootstrap, topology, 20, /*device=*/0);
          auto memory = device_memory(device);
          auto impl = make_loopback_scheduled(algorithm, device, fabric);
          EXPECT_EQ(run_checked(*impl, *memory, args, bootstrap.rank(), ranks), 0u)
              << algorithm.name << " rank " << bootstrap.rank();
          // Bytes per call (two calls ran), most over the ranks, as the bench reports them.
          const uint64_t mine = impl->traffic()->total_bytes_sent() / 2;
          uint64_t most = 0;
          for (const std::string& bytes : bootstrap.allgather(std::to_string(mine)))
            most = std::max<uint64_t>(most, std::stoull(bytes));
          EXPECT_EQ(most, predicted.max_bytes_sent) << algorithm.name;
          bootstrap.barrier();  // every rank's copies are done before any context goes
        });
        EXPECT_EQ(error, "") << algorithm.name << " at " << ranks << " ranks, " << dtype_name(type);
      }
}

}  // namespace
}  // namespace cclab
