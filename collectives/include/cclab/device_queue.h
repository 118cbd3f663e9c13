// Running device plans (cclab/device_plan.h): what a plan needs of a device and its communicator,
// and the code that enqueues a plan, shared by every implementation of that interface: NCCL with
// CUDA on a GPU, and ThreadDeviceQueue, a host stand-in (ranks as threads, host memory, NCCL's
// matching rules) that lets CI run the same enqueueing code end to end without a GPU.
#pragma once

#include <cstddef>
#include <memory>

#include "cclab/deadline.h"
#include "cclab/device_plan.h"
#include "cclab/dtype.h"
#include "cclab/schedule.h"
#include "cclab/traffic_meter.h"

namespace cclab {

/// One rank's stream and communicator. Everything is enqueued and runs in order: groups of
/// point-to-point messages (each pair's messages matched in the order they are issued, as NCCL
/// does), reductions and copies between them. The traffic meter counts bytes when enqueued.
class DeviceQueue {
 public:
  DeviceQueue(int rank, int size) : rank_(rank), size_(size), traffic_(rank, size) {}
  virtual ~DeviceQueue() = default;
  DeviceQueue(const DeviceQueue&) = delete;
  DeviceQueue& operator=(const DeviceQueue&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  TrafficMeter& traffic() { return traffic_; }

  virtual void group_start() = 0;
  virtual void send(int peer, const void* buffer, size_t bytes) = 0;
  virtual void recv(int peer, void* buffer, size_t bytes) = 0;
  virtual void group_end() = 0;
  /// dst = a op b over `count` elements (cclab::reduce's contract, on the device).
  virtual void reduce(void* dst, const void* a, const void* b, size_t count, DataType type, ReduceOp op,
                      int divisor) = 0;
  virtual void copy(void* dst, const void* source, size_t bytes) = 0;
  /// Waits until everything enqueued has run; TimeoutError naming the peer once `deadline` passes.
  virtual void synchronize(Deadline deadline) = 0;

 private:
  int rank_, size_;
  TrafficMeter traffic_;
};

/// The memory of one call on a device: input, output (equal to input in place, as HostBuffers) and
/// the plan's scratch.
struct DeviceBuffers {
  const void* input = nullptr;
  void* output = nullptr;
  void* scratch = nullptr;
};

/// Enqueues one call of `schedule` as `plan` orders it (compile_device_plans) on `queue`.
void enqueue_plan(DeviceQueue& queue, const Schedule& schedule, const DevicePlan& plan, DeviceBuffers buffers,
                  DataType type, ReduceOp op);

/// The host stand-in's shared state: one FIFO of messages per ordered pair of ranks.
class ThreadDeviceFabric;

/// A DeviceQueue on host memory for ranks that are threads of one process. It keeps NCCL's rules:
/// a pair's messages match in issue order and must agree in size, and a group's messages make
/// progress together (its sends are delivered when the group is enqueued, its receives complete
/// when synchronize() runs the queue). Work runs in synchronize(), in enqueue order.
class ThreadDeviceQueue : public DeviceQueue {
 public:
  ThreadDeviceQueue(std::shared_ptr<ThreadDeviceFabric> fabric, int rank);
  static std::shared_ptr<ThreadDeviceFabric> make_fabric(int ranks);
  ~ThreadDeviceQueue() override;

  void group_start() override;
  void send(int peer, const void* buffer, size_t bytes) override;
  void recv(int peer, void* buffer, size_t bytes) override;
  void group_end() override;
  void reduce(void* dst, const void* a, const void* b, size_t count, DataType type, ReduceOp op,
              int divisor) override;
  void copy(void* dst, const void* source, size_t bytes) override;
  void synchronize(Deadline deadline) override;

 private:
  struct Work;
  std::shared_ptr<ThreadDeviceFabric> fabric_;
  std::unique_ptr<Work> work_;
};

}  // namespace cclab
