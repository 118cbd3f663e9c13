// The collective sweep (DESIGN 3.4): sizes x implementations, interleaved per size, timed per
// iteration on every rank, checked, and written as results.
#pragma once

#include <cstddef>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "cclab/algorithm.h"
#include "cclab/comm.h"
#include "cclab/device.h"

namespace cclab {

struct CollectiveBenchOptions {
  Collective collective = Collective::allreduce;
  size_t min_bytes = 8;
  size_t max_bytes = size_t{64} << 20;
  double step_factor = 2;   // used when step_bytes is 0
  size_t step_bytes = 0;
  int iters = 20;
  int warmup = 5;
  DataType dtype = DataType::f32;
  ReduceOp op = ReduceOp::sum;
  int root = 0;
  bool check = false;
  bool inplace = false;
  bool percentiles = false;
  bool verbose = false;  // the header shows every figure of the cost model, not the short line
  double min_busbw_gbps = 0;  // --min-busbw: the run fails when an implementation's average is below
  std::vector<std::string> impls = {"ring"};
  std::string mem = "shared";   // where the arrays live: "shared" (host memory registered for peer reads), "host"
                                // (private), or "cuda" (the GPU of the rank's local rank)
  // Where hand-written algorithms send on a GPU (needs mem "cuda"): "nccl" (NCCL point-to-point,
  // one GPU per rank), "device-loopback" (ranks as threads of one process sharing one GPU, over
  // loopback_fabric), or "" (host memory: the job's transport).
  std::string device_transport;
  std::shared_ptr<LoopbackDeviceFabric> loopback_fabric;
  // --cuda-graph N (nccl-tests' -G): at each size the timed iterations are captured once into a
  // CUDA graph and replayed N times, one sample per replay; 0: every call launched on its own.
  int graph_replays = 0;
  double timeout_s = 60;
  std::string json_path;
  // Chrome trace events (cclab/trace.h): after each implementation's timed iterations at a size, one
  // more call, traced step by step. Empty: no trace.
  std::string trace_path;
  std::string profile_path;  // cost model parameters; empty: calibrate on this job first
  size_t segment_bytes = size_t{1} << 20;
  size_t segments_in_flight = 4;
};

/// UsageError unless implementation `name` can run on options.mem: host implementations on host
/// memory; on a GPU, "nccl" and hand-written algorithms with options.device_transport.
void check_implementation_memory(const CollectiveBenchOptions& options, const std::string& name);

/// Runs the sweep on every rank of `comm`; rank 0 prints to `out` and writes results, and ends
/// with nccl-tests' closing lines (wrong elements, average busbw per implementation). `argv` is
/// recorded in every result. Returns, on every rank, whether the results passed their checks: no
/// wrong element, and no average busbw below options.min_busbw_gbps.
bool run_collective_bench(Comm& comm, const CollectiveBenchOptions& options, const std::vector<std::string>& argv,
                          std::ostream& out);

}  // namespace cclab
