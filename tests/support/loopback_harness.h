// Runs one allreduce algorithm on ranks as threads over the loopback transport, with real data
// filled by --check's pattern, and reports per rank what went wrong and what was sent.
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cclab/algorithm.h"
#include "cclab/host_executor.h"
#include "check.h"
#include "transports/loopback/loopback_transport.h"

namespace cclab {

struct RankOutcome {
  size_t wrong = 0;
  uint64_t bytes_sent = 0, bytes_received = 0;
  std::string error;
};

/// `calls` calls in a row on each rank: sequence numbers keep their messages apart and buffers
/// are reused, as in a benchmark. Bytes are per call.
inline std::vector<RankOutcome> run_allreduce_on_loopback(const Algorithm& algorithm, int ranks,
                                                          const CollectiveArgs& args, int calls = 2) {
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

}  // namespace cclab
