// The collective sweep with ranks that are threads of one process (bootstrap/thread_ranks.h), as
// device-loopback runs it on a GPU; here on host memory, so that what the threads share (the
// records' identity, rank 0's output and results file) is exercised on every machine.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "bootstrap/thread_ranks.h"
#include "collective_bench.h"
#include "results.h"

namespace cclab {
namespace {

TEST(BenchInThreads, ThreeThreadRanksSweepCheckAndRecordLikeProcesses) {
  const std::string json = ::testing::TempDir() + "bench_in_threads.jsonl";
  std::filesystem::remove(json);
  CollectiveBenchOptions options;
  options.impls = {"ring", "recursive_doubling"};
  options.mem = "host";
  options.min_bytes = 8;
  options.max_bytes = 64 << 10;
  options.step_factor = 8;
  options.iters = 3;
  options.warmup = 1;
  options.check = true;
  options.json_path = json;
  options.timeout_s = 30;
  CommOptions comm_options;
  comm_options.timeout_s = 30;
  comm_options.yield_when_idle = true;
  std::ostringstream out;
  const ThreadRanksOutcome outcome = run_ranks_as_threads(3, comm_options, [&](Comm& comm) {
    describe_job(comm);
    std::ostringstream ignored;
    return run_collective_bench(comm, options, {"cclab", "bench", "allreduce"}, comm.rank() == 0 ? out : ignored);
  });
  ASSERT_FALSE(outcome.failure);
  EXPECT_TRUE(outcome.passed) << out.str();
  EXPECT_NE(out.str().find("# wrong elements: 0 OK"), std::string::npos) << out.str();

  std::ifstream records(json);
  int measured = 0;
  for (std::string line; std::getline(records, line);) {
    const auto record = nlohmann::json::parse(line);
    if (record["kind"] != "collective") continue;
    ++measured;
    EXPECT_EQ(record["ranks"], 3);
    EXPECT_EQ(record["wrong"], 0);
    EXPECT_EQ(record["launcher"], "threads");
    EXPECT_EQ(record["hosts"].size(), 3u);
  }
  EXPECT_EQ(measured, 5 * 2);  // 8 B to 32 KiB by factors of 8, two implementations
}

}  // namespace
}  // namespace cclab
