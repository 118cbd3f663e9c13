// The CUDA side of cclab/device.h: a rank's device, stream and NCCL communicator.
#pragma once

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <functional>
#include <memory>
#include <string>

#include "cclab/bootstrap.h"
#include "cclab/deadline.h"
#include "cclab/device.h"
#include "cclab/memory_space.h"
#include "cuda_check.h"
#include "nccl_library.h"

namespace cclab {

class DeviceContext;
class GraphReplay;
/// Times iterations by a pair of CUDA events around each on the context's stream.
std::unique_ptr<IterationClock> device_clock(DeviceContext& device);
/// Captures `iterations` calls of `enqueue` (work on the context's stream only) into a CUDA graph.
std::unique_ptr<GraphReplay> capture_graph(DeviceContext& device, int iterations, const std::function<void()>& enqueue);

class DeviceContext {
 public:
  /// GPU `device` for rank bootstrap.rank() of `topology`; every wait on it gives up after `timeout_s`.
  DeviceContext(Bootstrap& bootstrap, Topology topology, int device, double timeout_s);
  ~DeviceContext();
  DeviceContext(const DeviceContext&) = delete;
  DeviceContext& operator=(const DeviceContext&) = delete;

  int rank() const { return bootstrap_.rank(); }
  int size() const { return bootstrap_.size(); }
  const Topology& topology() const { return topology_; }
  double timeout_s() const { return timeout_s_; }
  int device() const { return device_; }
  const std::string& name() const { return name_; }
  cudaStream_t stream() const { return stream_; }
  /// Makes this context's device current for the calling thread.
  void make_current() const;

  /// The NCCL communicator of the Comm's ranks on their devices; the first call creates it on every
  /// rank (collective), non-blocking, so its wait keeps the job's deadline.
  ncclComm_t nccl(Deadline deadline);
  /// Throws unless an NCCL call succeeded; a call still in progress (non-blocking communicator) is
  /// waited for until `deadline`.
  void check_nccl(ncclResult_t status, const char* what, Deadline deadline);

  /// Returns when everything enqueued on the stream has run. Once `deadline` passes, or NCCL reports
  /// an error (a peer died), the communicator is aborted and Error/TimeoutError names this rank.
  void synchronize(Deadline deadline);

 private:
  [[noreturn]] void abort(const std::string& why, bool timed_out);

  Bootstrap& bootstrap_;
  Topology topology_;
  int device_;
  double timeout_s_;
  std::string name_;
  cudaStream_t stream_ = nullptr;
  ncclComm_t nccl_ = nullptr;
};

}  // namespace cclab
