#include "loopback_device_queue.h"

#include <future>

#include "cclab/cuda_reduce.h"
#include "schedule/pair_channels.h"

namespace cclab {
namespace {

cudaEvent_t new_event() {
  cudaEvent_t event = nullptr;
  check_cuda(cudaEventCreateWithFlags(&event, cudaEventDisableTiming), "cudaEventCreate");
  return event;
}

// A send as its receiver sees it: where the bytes are, the event after which they are ready, and
// where the receiver hands back the event that follows its copy.
struct LoopbackMessage {
  const void* buffer;
  size_t bytes;
  cudaEvent_t ready;
  std::shared_ptr<std::promise<cudaEvent_t>> copied;
};

}  // namespace

class LoopbackDeviceFabric : public PairChannels<LoopbackMessage> {
  using PairChannels::PairChannels;
};

LoopbackDeviceQueue::LoopbackDeviceQueue(std::shared_ptr<LoopbackDeviceFabric> fabric, DeviceContext& device)
    : DeviceQueue(device.rank(), device.size()), fabric_(std::move(fabric)), device_(device) {}

std::shared_ptr<LoopbackDeviceFabric> LoopbackDeviceQueue::make_fabric(int ranks) {
  return std::make_shared<LoopbackDeviceFabric>(ranks);
}

LoopbackDeviceQueue::~LoopbackDeviceQueue() = default;

void LoopbackDeviceQueue::group_start() {
  if (in_group_) throw Error("device queue: group_start inside a group");
  in_group_ = true;
}

void LoopbackDeviceQueue::send(int peer, const void* buffer, size_t bytes) {
  if (!in_group_) throw Error("device queue: send outside a group");
  sends_.push_back({peer, const_cast<void*>(buffer), bytes});
}

void LoopbackDeviceQueue::recv(int peer, void* buffer, size_t bytes) {
  if (!in_group_) throw Error("device queue: recv outside a group");
  receives_.push_back({peer, buffer, bytes});
}

void LoopbackDeviceQueue::group_end() {
  if (!in_group_) throw Error("device queue: group_end without group_start");
  in_group_ = false;
  device_.make_current();
  const Deadline deadline = Deadline::after(device_.timeout_s());
  cudaStream_t stream = device_.stream();
  // Sends first, so that no rank waits for a peer that waits for it within one group.
  std::vector<std::future<cudaEvent_t>> copies;
  for (const Pending& send : sends_) {
    cudaEvent_t ready = new_event();
    check_cuda(cudaEventRecord(ready, stream), "cudaEventRecord");
    auto copied = std::make_shared<std::promise<cudaEvent_t>>();
    copies.push_back(copied->get_future());
    fabric_->put(rank(), send.peer, {send.buffer, send.bytes, ready, std::move(copied)});
  }
  for (const Pending& receive : receives_) {
    LoopbackMessage message = fabric_->take(receive.peer, rank(), deadline);
    if (message.bytes != receive.bytes) throw mismatched_message(rank(), receive.peer, receive.bytes, message.bytes);
    check_cuda(cudaStreamWaitEvent(stream, message.ready, 0), "cudaStreamWaitEvent");
    cudaEventDestroy(message.ready);  // released once it has fired
    check_cuda(cudaMemcpyAsync(receive.buffer, message.buffer, receive.bytes, cudaMemcpyDeviceToDevice, stream),
               "cudaMemcpyAsync");
    cudaEvent_t copied = new_event();
    check_cuda(cudaEventRecord(copied, stream), "cudaEventRecord");
    message.copied->set_value(copied);
  }
  // The group completes, as an NCCL group does, when the peers have taken this rank's sends.
  for (size_t i = 0; i < copies.size(); ++i) {
    if (copies[i].wait_until(deadline.when) != std::future_status::ready)
      throw TimeoutError("rank " + std::to_string(rank()) + ": rank " + std::to_string(sends_[i].peer) +
                         " did not receive its message before the deadline");
    cudaEvent_t copied = copies[i].get();
    check_cuda(cudaStreamWaitEvent(stream, copied, 0), "cudaStreamWaitEvent");
    cudaEventDestroy(copied);
  }
  sends_.clear();
  receives_.clear();
}

void LoopbackDeviceQueue::reduce(void* dst, const void* a, const void* b, size_t count, DataType type, ReduceOp op,
                                 int divisor) {
  device_.make_current();
  cuda::reduce(dst, a, b, count, type, op, divisor, device_.stream());
}

void LoopbackDeviceQueue::copy(void* dst, const void* source, size_t bytes) {
  device_.make_current();
  check_cuda(cudaMemcpyAsync(dst, source, bytes, cudaMemcpyDeviceToDevice, device_.stream()), "cudaMemcpyAsync");
}

void LoopbackDeviceQueue::synchronize(Deadline deadline) { device_.synchronize(deadline); }

}  // namespace cclab
