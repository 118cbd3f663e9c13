// bench p2p --impl nccl: NCCL's point-to-point between two ranks' GPU buffers, as OSU's
// osu_latency/osu_bw/osu_bibw do with -d cuda and nccl-tests' sendrecv does. Each iteration is
// bracketed by CUDA events on the rank's stream, so its time is the GPU's, not the host's enqueue.
#include <algorithm>
#include <utility>

#include "cclab/device.h"
#include "cclab/error.h"
#include "cclab/memory_space.h"
#include "device_context.h"

namespace cclab {
namespace {

/// A CUDA event that destroys itself.
class Event {
 public:
  Event() { check_cuda(cudaEventCreate(&event_), "cudaEventCreate"); }
  ~Event() { cudaEventDestroy(event_); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return event_; }

 private:
  cudaEvent_t event_ = nullptr;
};

class NcclPairTraffic : public DevicePairTraffic {
 public:
  NcclPairTraffic(std::shared_ptr<DeviceContext> device, size_t max_bytes)
      : device_(std::move(device)), memory_(device_memory(device_)) {
    // Buffers of at least one byte: the acknowledgement uses them too.
    const size_t bytes = std::max<size_t>(max_bytes, 1);
    send_ = memory_->allocate(bytes);
    recv_ = memory_->allocate(bytes);
    memory_->zero(send_.get(), bytes);
    // Every rank of the job joins the communicator's creation, also those outside the first pair.
    device_->nccl(Deadline::after(device_->timeout_s()));
  }

  std::string description() const override { return "nccl " + nccl_version() + " on " + device_->name(); }

  double latency_us(int peer, bool initiator, size_t bytes, Deadline deadline) override {
    return timed(deadline, [&] {
      // Two groups in stream order: the second message leaves only after the first arrived.
      for (int leg = 0; leg < 2; ++leg) {
        const bool sending = (leg == 0) == initiator;
        group(deadline, [&] { sending ? send(peer, bytes, deadline) : recv(peer, bytes, deadline); });
      }
    }) / 2;
  }

  double window_us(int peer, bool initiator, bool sends, bool receives, int window, size_t bytes,
                   Deadline deadline) override {
    return timed(deadline, [&] {
      // NCCL matches a pair's messages in the order they were issued, so the window needs no tags.
      group(deadline, [&] {
        for (int i = 0; i < window; ++i) {
          if (receives) recv(peer, bytes, deadline);
          if (sends) send(peer, bytes, deadline);
        }
      });
      // One byte back to the initiator closes the iteration, as the host test's acknowledgement.
      group(deadline, [&] { initiator ? recv(peer, 1, deadline) : send(peer, 1, deadline); });
    });
  }

 private:
  template <class Enqueue>
  double timed(Deadline deadline, Enqueue&& enqueue) {
    device_->make_current();
    check_cuda(cudaEventRecord(start_.get(), device_->stream()), "cudaEventRecord");
    enqueue();
    check_cuda(cudaEventRecord(stop_.get(), device_->stream()), "cudaEventRecord");
    device_->synchronize(deadline);
    float ms = 0;
    check_cuda(cudaEventElapsedTime(&ms, start_.get(), stop_.get()), "cudaEventElapsedTime");
    return double(ms) * 1e3;
  }

  template <class Calls>
  void group(Deadline deadline, Calls&& calls) {
    const NcclLibrary& nccl = *load_nccl();
    device_->check_nccl(nccl.ncclGroupStart(), "ncclGroupStart", deadline);
    calls();
    device_->check_nccl(nccl.ncclGroupEnd(), "ncclGroupEnd", deadline);
  }

  void send(int peer, size_t bytes, Deadline deadline) {
    const NcclLibrary& nccl = *load_nccl();
    device_->check_nccl(nccl.ncclSend(send_.get(), bytes, ncclUint8, peer, device_->nccl(deadline), device_->stream()),
                        "ncclSend", deadline);
  }
  void recv(int peer, size_t bytes, Deadline deadline) {
    const NcclLibrary& nccl = *load_nccl();
    device_->check_nccl(nccl.ncclRecv(recv_.get(), bytes, ncclUint8, peer, device_->nccl(deadline), device_->stream()),
                        "ncclRecv", deadline);
  }

  std::shared_ptr<DeviceContext> device_;
  std::unique_ptr<MemorySpace> memory_;
  std::shared_ptr<std::byte> send_, recv_;
  Event start_, stop_;
};

}  // namespace

std::unique_ptr<DevicePairTraffic> make_nccl_pair_traffic(std::shared_ptr<DeviceContext> device, size_t max_bytes) {
  nccl_or_refuse();
  return std::make_unique<NcclPairTraffic>(std::move(device), max_bytes);
}

}  // namespace cclab
