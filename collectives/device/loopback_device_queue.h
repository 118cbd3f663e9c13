// device-loopback (DESIGN 3.8): ranks as threads of one process sharing one GPU, which NCCL 2.28
// refuses ("Duplicate GPU detected"). A message is a cudaMemcpyAsync from the sender's buffer on
// the receiver's stream, ordered by events: the copy waits for everything the sender enqueued
// before the message, and the sender's later work waits for the copy. Each pair's messages match
// in issue order, with NCCL's rules, so the plans that run over NCCL run here unchanged.
#pragma once

#include <memory>
#include <vector>

#include "cclab/device_queue.h"
#include "device_context.h"

namespace cclab {

/// The messages of one group of loopback ranks.
class LoopbackDeviceFabric;

class LoopbackDeviceQueue : public DeviceQueue {
 public:
  LoopbackDeviceQueue(std::shared_ptr<LoopbackDeviceFabric> fabric, DeviceContext& device);
  static std::shared_ptr<LoopbackDeviceFabric> make_fabric(int ranks);
  ~LoopbackDeviceQueue() override;

  void group_start() override;
  void send(int peer, const void* buffer, size_t bytes) override;
  void recv(int peer, void* buffer, size_t bytes) override;
  /// Posts the group's sends, enqueues its receives' copies (waiting on the host, until the
  /// deadline, for the peers to post them), then makes the stream wait until the peers have copied
  /// this rank's sends.
  void group_end() override;
  void reduce(void* dst, const void* a, const void* b, size_t count, DataType type, ReduceOp op, int divisor) override;
  void copy(void* dst, const void* source, size_t bytes) override;
  void synchronize(Deadline deadline) override;

 private:
  struct Pending {
    int peer;
    void* buffer;
    size_t bytes;
  };
  std::shared_ptr<LoopbackDeviceFabric> fabric_;
  DeviceContext& device_;
  bool in_group_ = false;
  std::vector<Pending> sends_, receives_;
};

}  // namespace cclab
