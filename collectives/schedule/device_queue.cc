#include "cclab/device_queue.h"

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "cclab/error.h"
#include "cclab/reduce.h"
#include "schedule/pair_channels.h"

namespace cclab {

void enqueue_plan(DeviceQueue& queue, const Schedule& schedule, const DevicePlan& plan, DeviceBuffers buffers,
                  DataType type, ReduceOp op) {
  const size_t element = dtype_size(type);
  const int divisor = op == ReduceOp::avg ? queue.size() : 1;
  auto address = [&](const Region& region) {
    return region_address(region, buffers.input, buffers.output, buffers.scratch, element);
  };
  auto run_local = [&](uint32_t index) {
    const Step& step = schedule.steps[index];
    if (step.kind == StepKind::reduce)
      queue.reduce(address(step.target), address(step.source), address(step.operand), step.target.count, type, op,
                   step.finalize ? divisor : 1);
    else if (address(step.target) != address(step.source))
      queue.copy(address(step.target), address(step.source), step.target.count * element);
  };
  for (uint32_t index : plan.before) run_local(index);
  for (const DevicePlan::Group& group : plan.groups) {
    if (!group.messages.empty()) {
      queue.group_start();
      for (uint32_t index : group.messages) {
        const Step& step = schedule.steps[index];
        if (step.kind == StepKind::send) {
          const size_t bytes = step.source.count * element;
          queue.traffic().count_send(step.peer, bytes);
          queue.send(step.peer, address(step.source), bytes);
        } else {
          const size_t bytes = step.target.count * element;
          queue.traffic().count_receive(step.peer, bytes);
          queue.recv(step.peer, address(step.target), bytes);
        }
      }
      queue.group_end();
    }
    for (uint32_t index : group.after) run_local(index);
  }
}

// ---------------------------------------------------------------------------------------------
// The host stand-in.

class ThreadDeviceFabric : public PairChannels<std::vector<std::byte>> {
  using PairChannels::PairChannels;
};

// The enqueued work: each entry runs in synchronize(), in order. A group's sends snapshot their
// buffers when the group runs (everything enqueued before it has run by then), then its receives
// wait for their messages.
struct ThreadDeviceQueue::Work {
  std::vector<std::function<void(Deadline)>> entries;
  std::vector<std::function<void(Deadline)>> group_sends, group_receives;
  bool in_group = false;
};

ThreadDeviceQueue::ThreadDeviceQueue(std::shared_ptr<ThreadDeviceFabric> fabric, int rank)
    : DeviceQueue(rank, fabric->ranks()), fabric_(std::move(fabric)), work_(std::make_unique<Work>()) {}

std::shared_ptr<ThreadDeviceFabric> ThreadDeviceQueue::make_fabric(int ranks) {
  return std::make_shared<ThreadDeviceFabric>(ranks);
}

ThreadDeviceQueue::~ThreadDeviceQueue() = default;

void ThreadDeviceQueue::group_start() {
  if (work_->in_group) throw Error("device queue: group_start inside a group");
  work_->in_group = true;
}

void ThreadDeviceQueue::send(int peer, const void* buffer, size_t bytes) {
  if (!work_->in_group) throw Error("device queue: send outside a group");
  const int me = rank();
  work_->group_sends.push_back([this, me, peer, buffer, bytes](Deadline) {
    const auto* data = static_cast<const std::byte*>(buffer);
    fabric_->put(me, peer, std::vector<std::byte>(data, data + bytes));
  });
}

void ThreadDeviceQueue::recv(int peer, void* buffer, size_t bytes) {
  if (!work_->in_group) throw Error("device queue: recv outside a group");
  const int me = rank();
  work_->group_receives.push_back([this, me, peer, buffer, bytes](Deadline deadline) {
    const std::vector<std::byte> payload = fabric_->take(peer, me, deadline);
    if (payload.size() != bytes) throw mismatched_message(me, peer, bytes, payload.size());
    std::memcpy(buffer, payload.data(), bytes);
  });
}

void ThreadDeviceQueue::group_end() {
  if (!work_->in_group) throw Error("device queue: group_end without group_start");
  work_->in_group = false;
  auto sends = std::move(work_->group_sends), receives = std::move(work_->group_receives);
  work_->group_sends.clear();
  work_->group_receives.clear();
  work_->entries.push_back([sends = std::move(sends), receives = std::move(receives)](Deadline deadline) {
    for (const auto& send : sends) send(deadline);
    for (const auto& receive : receives) receive(deadline);
  });
}

void ThreadDeviceQueue::reduce(void* dst, const void* a, const void* b, size_t count, DataType type, ReduceOp op,
                               int divisor) {
  work_->entries.push_back([=](Deadline) { cclab::reduce(dst, a, b, count, type, op, divisor); });
}

void ThreadDeviceQueue::copy(void* dst, const void* source, size_t bytes) {
  work_->entries.push_back([=](Deadline) { std::memmove(dst, source, bytes); });
}

void ThreadDeviceQueue::synchronize(Deadline deadline) {
  if (work_->in_group) throw Error("device queue: synchronize inside a group");
  auto entries = std::move(work_->entries);
  work_->entries.clear();
  for (const auto& entry : entries) entry(deadline);
}

}  // namespace cclab
