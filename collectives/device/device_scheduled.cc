// A hand-written algorithm on GPUs: at each size every rank builds the Schedules of all ranks,
// compiles them into device plans (the same on every rank, since they are compiled together) and
// enqueues its own plan on its DeviceQueue at each call: NCCL (--transport nccl) or device-loopback.
#include <functional>

#include "cclab/device_plan.h"
#include "cclab/implementation.h"
#include "cclab/simulator.h"
#include "device_context.h"
#include "loopback_device_queue.h"
#include "nccl_device_queue.h"

namespace cclab {
namespace {

using QueueFactory = std::function<std::unique_ptr<DeviceQueue>(DeviceContext&)>;

class DeviceScheduled : public Implementation {
 public:
  DeviceScheduled(const Algorithm& algorithm, std::shared_ptr<DeviceContext> device, std::string transport,
                  QueueFactory make_queue)
      : algorithm_(algorithm),
        device_(std::move(device)),
        memory_(device_memory(device_)),
        transport_(std::move(transport)),
        make_queue_(std::move(make_queue)) {}
  std::string name() const override { return algorithm_.name; }
  std::string transport() const override { return transport_; }

  void prepare(const CollectiveArgs& args) override {
    args_ = args;
    const Topology& topology = device_->topology();
    std::vector<Schedule> schedules;
    for (int rank = 0; rank < topology.ranks(); ++rank)
      schedules.push_back(device_schedule(algorithm_, topology, rank, args));
    plan_ = compile_device_plans(schedules)[size_t(device_->rank())];
    schedule_ = std::move(schedules[size_t(device_->rank())]);
    predicted_ = predict_traffic(algorithm_, topology, args);
    const size_t scratch = schedule_.scratch_count * dtype_size(args.dtype);
    if (!scratch_ || scratch > scratch_capacity_) scratch_ = memory_->allocate(scratch), scratch_capacity_ = scratch;
    if (!queue_) queue_ = make_queue_(*device_);
  }

  void run(const void* input, void* output, Deadline) override {
    enqueue_plan(*queue_, schedule_, plan_, {input, output, scratch_.get()}, args_.dtype, args_.op);
  }
  void wait(Deadline deadline) override { queue_->synchronize(deadline); }
  std::unique_ptr<IterationClock> clock() const override { return device_clock(*device_); }
  /// Over NCCL everything goes on the rank's stream; device-loopback also waits on other ranks'
  /// streams, which a capture of one stream cannot hold.
  std::unique_ptr<GraphReplay> capture(const void* input, void* output, int iterations, Deadline deadline) override {
    if (transport_ != "nccl") return nullptr;
    return capture_graph(*device_, iterations, [&] { run(input, output, deadline); });
  }

  size_t scratch_bytes(const CollectiveArgs& args) const override {
    return algorithm_.build(device_->topology(), device_->rank(), args).scratch_count * dtype_size(args.dtype);
  }
  std::optional<PredictedTraffic> predicted_traffic() const override { return predicted_; }
  const TrafficCounters* traffic() const override { return queue_ ? &queue_->traffic().counters() : nullptr; }

 private:
  const Algorithm& algorithm_;
  std::shared_ptr<DeviceContext> device_;
  std::unique_ptr<MemorySpace> memory_;
  std::string transport_;
  QueueFactory make_queue_;
  CollectiveArgs args_;
  Schedule schedule_;
  DevicePlan plan_;
  PredictedTraffic predicted_;
  std::shared_ptr<std::byte> scratch_;
  size_t scratch_capacity_ = 0;
  std::unique_ptr<DeviceQueue> queue_;
};

}  // namespace

std::unique_ptr<Implementation> make_nccl_scheduled(const Algorithm& algorithm, std::shared_ptr<DeviceContext> device) {
  nccl_or_refuse();
  return std::make_unique<DeviceScheduled>(algorithm, std::move(device), "nccl", [](DeviceContext& context) {
    return std::make_unique<NcclDeviceQueue>(context, Deadline::after(context.timeout_s()));
  });
}

std::shared_ptr<LoopbackDeviceFabric> make_loopback_fabric(int ranks) {
  return LoopbackDeviceQueue::make_fabric(ranks);
}

std::unique_ptr<Implementation> make_loopback_scheduled(const Algorithm& algorithm,
                                                        std::shared_ptr<DeviceContext> device,
                                                        std::shared_ptr<LoopbackDeviceFabric> fabric) {
  return std::make_unique<DeviceScheduled>(algorithm, std::move(device), "device-loopback",
                                           [fabric = std::move(fabric)](DeviceContext& context) {
                                             return std::make_unique<LoopbackDeviceQueue>(fabric, context);
                                           });
}

}  // namespace cclab
