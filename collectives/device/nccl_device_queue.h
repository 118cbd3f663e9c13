// The DeviceQueue of a GPU rank (cclab/device_queue.h): messages as NCCL point-to-point calls in
// groups, reductions as cclab's CUDA kernels, copies as cudaMemcpyAsync, all on the rank's stream.
#pragma once

#include "cclab/device_queue.h"
#include "device_context.h"

namespace cclab {

class NcclDeviceQueue : public DeviceQueue {
 public:
  /// Creates the context's NCCL communicator if it has none yet (collective).
  NcclDeviceQueue(DeviceContext& device, Deadline deadline);

  void group_start() override;
  void send(int peer, const void* buffer, size_t bytes) override;
  void recv(int peer, void* buffer, size_t bytes) override;
  void group_end() override;
  void reduce(void* dst, const void* a, const void* b, size_t count, DataType type, ReduceOp op, int divisor) override;
  void copy(void* dst, const void* source, size_t bytes) override;
  void synchronize(Deadline deadline) override;

 private:
  DeviceContext& device_;
  const NcclLibrary& nccl_;
  ncclComm_t comm_;
  // Enqueueing never waits for a peer, but a non-blocking communicator may still be busy with the
  // previous group; this bounds that wait.
  double timeout_s_;
};

}  // namespace cclab
