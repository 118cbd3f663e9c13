// Point-to-point benchmarks in the manner of OSU's osu_latency, osu_bw and osu_bibw, over the
// Comm's transport, for one pair of ranks or every pair (DESIGN 3.4).
#pragma once

#include <cstddef>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

#include "cclab/comm.h"

namespace cclab {

enum class P2pTest { latency, bw, bibw };

struct P2pBenchOptions {
  P2pTest test = P2pTest::latency;
  size_t min_bytes = 8;
  size_t max_bytes = size_t{4} << 20;
  double step_factor = 2;
  size_t step_bytes = 0;
  int iters = 100;
  int warmup = 10;
  // More untimed iterations where `warmup` moves fewer bytes than this: a page's first dozen or
  // so transfers run up to twice as slow, which a few warmups of a large size cannot hide.
  size_t warmup_bytes = 0;
  int window = 64;            // messages in flight per iteration of bw and bibw
  bool all_pairs = false;     // every pair (i < j) in turn and a matrix; else `pairs`
  std::vector<std::pair<int, int>> pairs = {{0, 1}};
  double timeout_s = 60;
  std::string json_path;
  std::string trace_path;  // Chrome trace events of one extra iteration per (pair, size) (cclab/trace.h)
  bool percentiles = false;
  // "transport": the job's transport on host memory (OSU's default); "nccl": ncclSend/ncclRecv
  // between GPU buffers (OSU's -d cuda over NCCL), the local rank's GPU.
  std::string impl = "transport";
};

/// One measured (pair, size): the median is what the matrix and the fit use.
struct P2pPoint {
  int from = 0, to = 0;
  size_t bytes = 0;
  double median_us = 0;  // latency: one-way time; bw/bibw: time of one window
  double gbps = 0;       // bw/bibw: bytes / time (bibw: both directions); latency: bytes / one-way
};

/// Runs the test on every rank; rank 0 prints to `out`, writes results and returns the points
/// (other ranks return an empty list).
std::vector<P2pPoint> run_p2p_bench(Comm& comm, const P2pBenchOptions& options, const std::vector<std::string>& argv,
                                    std::ostream& out);

std::string_view p2p_test_name(P2pTest test);

}  // namespace cclab
