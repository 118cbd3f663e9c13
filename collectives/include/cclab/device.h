// A rank's GPU (DESIGN 3.8): its device, stream and NCCL communicator, and what runs on them:
// device memory for the bench's arrays, NCCL's collectives as reference rows, and hand-written
// Schedules compiled into device plans over NCCL point-to-point. No CUDA types here: a build
// without CUDA links the same entry points, and each refuses with the reason (UsageError).
#pragma once

#include <memory>
#include <string>

#include "cclab/algorithm.h"
#include "cclab/deadline.h"

namespace cclab {

class Bootstrap;
class Comm;
class Implementation;
class MemorySpace;

/// Why this process cannot use a GPU ("" when it can): no CUDA in the build, no driver, no device.
std::string cuda_unavailable_reason();
/// The GPUs this process sees (0 when it cannot use one).
int cuda_device_count();
/// Why NCCL cannot be used ("" when it can): no CUDA in the build, or libnccl.so.2 does not load.
std::string nccl_unavailable_reason();
/// The version of the NCCL library that loads ("2.28.9"); "" when none does.
std::string nccl_version();

/// One rank's GPU. Everything its implementations do is enqueued on its one stream, in order.
class DeviceContext;

/// Opens the GPU of this rank for `comm`: device i for the i-th rank of its node. UsageError when
/// the node has fewer GPUs than ranks (NCCL refuses two ranks on one GPU) or no usable GPU.
/// `comm` must outlive the context.
std::shared_ptr<DeviceContext> open_device(Comm& comm);
/// The same for ranks with a bootstrap and a topology but no Comm (threads of a GPU test), on GPU
/// `device`, or as above when `device` is -1. `bootstrap` must outlive the context.
std::shared_ptr<DeviceContext> open_device(Bootstrap& bootstrap, const Topology& topology, double timeout_s,
                                           int device = -1);
/// "cuda:0 NVIDIA H100 80GB HBM3", for headers and records.
std::string describe_device(const DeviceContext& device);
/// The context's GPU memory.
std::unique_ptr<MemorySpace> device_memory(std::shared_ptr<DeviceContext> device);

/// NCCL's own collective (ncclAllReduce, ...) as the reference row "nccl". Its NCCL communicator is
/// created on first use, collectively.
std::unique_ptr<Implementation> make_nccl_collective(Collective collective, std::shared_ptr<DeviceContext> device);
/// A hand-written algorithm on the GPU: every rank's Schedule compiled into device plans
/// (cclab/device_plan.h) and enqueued as NCCL groups, reduce kernels and copies on the stream.
std::unique_ptr<Implementation> make_nccl_scheduled(const Algorithm& algorithm, std::shared_ptr<DeviceContext> device);

/// bench p2p's traffic between two ranks' GPU buffers; every call is timed by CUDA events on the
/// rank's stream and returns when the GPU has run it.
class DevicePairTraffic {
 public:
  virtual ~DevicePairTraffic() = default;
  /// "nccl 2.28.9 on cuda:0 NVIDIA H100 80GB HBM3", for the header.
  virtual std::string description() const = 0;
  /// A ping-pong of `bytes` (the initiator sends first): half the round trip, microseconds.
  virtual double latency_us(int peer, bool initiator, size_t bytes, Deadline deadline) = 0;
  /// `window` messages of `bytes` sent and/or received as one group, then a one-byte
  /// acknowledgement to the initiator: microseconds.
  virtual double window_us(int peer, bool initiator, bool sends, bool receives, int window, size_t bytes,
                           Deadline deadline) = 0;
};
/// NCCL's ncclSend/ncclRecv (grouped) on buffers of `max_bytes` on `device`. Creates the NCCL
/// communicator: every rank of the job calls it.
std::unique_ptr<DevicePairTraffic> make_nccl_pair_traffic(std::shared_ptr<DeviceContext> device, size_t max_bytes);

/// device-loopback: ranks that are threads of one process sharing one GPU (NCCL 2.28 refuses two
/// ranks on one GPU), each with its own DeviceContext on that GPU; a message is a copy between
/// their buffers on the receiver's stream, ordered by events. The ranks share one fabric.
class LoopbackDeviceFabric;
std::shared_ptr<LoopbackDeviceFabric> make_loopback_fabric(int ranks);
/// A hand-written algorithm over device-loopback: the same device plans as over NCCL.
std::unique_ptr<Implementation> make_loopback_scheduled(const Algorithm& algorithm,
                                                        std::shared_ptr<DeviceContext> device,
                                                        std::shared_ptr<LoopbackDeviceFabric> fabric);

}  // namespace cclab
