// A hand-written algorithm on GPUs (--transport nccl): at each size every rank builds the Schedules
// of all ranks, compiles them into device plans (the same on every rank, since they are compiled
// together) and enqueues its own plan on its NcclDeviceQueue at each call.
#include "cclab/device_plan.h"
#include "cclab/implementation.h"
#include "cclab/simulator.h"
#include "device_context.h"
#include "nccl_device_queue.h"

namespace cclab {
namespace {

class NcclScheduled : public Implementation {
 public:
  NcclScheduled(const Algorithm& algorithm, std::shared_ptr<DeviceContext> device)
      : algorithm_(algorithm), device_(std::move(device)), memory_(device_memory(device_)) {}
  std::string name() const override { return algorithm_.name; }
  std::string transport() const override { return "nccl"; }

  void prepare(const CollectiveArgs& args) override {
    args_ = args;
    const Topology& topology = device_->comm().topology();
    std::vector<Schedule> schedules;
    for (int rank = 0; rank < topology.ranks(); ++rank) schedules.push_back(algorithm_.build(topology, rank, args));
    plan_ = compile_device_plans(schedules)[size_t(device_->comm().rank())];
    schedule_ = std::move(schedules[size_t(device_->comm().rank())]);
    predicted_ = predict_traffic(algorithm_, topology, args);
    const size_t scratch = schedule_.scratch_count * dtype_size(args.dtype);
    if (!scratch_ || scratch > scratch_capacity_) scratch_ = memory_->allocate(scratch), scratch_capacity_ = scratch;
    if (!queue_) queue_ = std::make_unique<NcclDeviceQueue>(*device_, Deadline::after(device_->comm().timeout_s()));
  }

  void run(const void* input, void* output, Deadline) override {
    enqueue_plan(*queue_, schedule_, plan_, {input, output, scratch_.get()}, args_.dtype, args_.op);
  }
  void wait(Deadline deadline) override { queue_->synchronize(deadline); }
  std::unique_ptr<IterationClock> clock() const override { return device_clock(*device_); }

  size_t scratch_bytes(const CollectiveArgs& args) const override {
    return algorithm_.build(device_->comm().topology(), device_->comm().rank(), args).scratch_count *
           dtype_size(args.dtype);
  }
  std::optional<PredictedTraffic> predicted_traffic() const override { return predicted_; }
  const TrafficCounters* traffic() const override { return queue_ ? &queue_->traffic().counters() : nullptr; }

 private:
  const Algorithm& algorithm_;
  std::shared_ptr<DeviceContext> device_;
  std::unique_ptr<MemorySpace> memory_;
  CollectiveArgs args_;
  Schedule schedule_;
  DevicePlan plan_;
  PredictedTraffic predicted_;
  std::shared_ptr<std::byte> scratch_;
  size_t scratch_capacity_ = 0;
  std::unique_ptr<NcclDeviceQueue> queue_;
};

}  // namespace

std::unique_ptr<Implementation> make_nccl_scheduled(const Algorithm& algorithm, std::shared_ptr<DeviceContext> device) {
  nccl_or_refuse();
  return std::make_unique<NcclScheduled>(algorithm, std::move(device));
}

}  // namespace cclab
