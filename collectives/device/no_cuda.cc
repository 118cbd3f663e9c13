// cclab/device.h in a build without CUDA (-DCCLAB_CUDA=OFF, or no nvcc or NCCL headers found): the
// same entry points, each refusing with the reason.
#include "cclab/device.h"
#include "cclab/error.h"
#include "cclab/implementation.h"

namespace cclab {
namespace {

constexpr const char* kNoCuda = "this build has no CUDA (built with -DCCLAB_CUDA=OFF, or nvcc or nccl.h was not found)";

}  // namespace

std::string cuda_unavailable_reason() { return kNoCuda; }
int cuda_device_count() { return 0; }
std::string nccl_unavailable_reason() { return kNoCuda; }
std::string nccl_version() { return ""; }

class DeviceContext {};

std::shared_ptr<DeviceContext> open_device(Comm&) { throw UsageError(std::string("--mem cuda: ") + kNoCuda); }
std::shared_ptr<DeviceContext> open_device(Bootstrap&, const Topology&, double, int) {
  throw UsageError(std::string("--mem cuda: ") + kNoCuda);
}
std::string describe_device(const DeviceContext&) { return ""; }
std::unique_ptr<MemorySpace> device_memory(std::shared_ptr<DeviceContext>) { throw UsageError(kNoCuda); }
std::unique_ptr<Implementation> make_nccl_collective(Collective, std::shared_ptr<DeviceContext>) {
  throw UsageError(std::string("--impl nccl: ") + kNoCuda);
}
std::unique_ptr<Implementation> make_nccl_scheduled(const Algorithm&, std::shared_ptr<DeviceContext>) {
  throw UsageError(std::string("--transport nccl: ") + kNoCuda);
}

std::unique_ptr<DevicePairTraffic> make_nccl_pair_traffic(std::shared_ptr<DeviceContext>, size_t) {
  throw UsageError(std::string("--impl nccl: ") + kNoCuda);
}

class LoopbackDeviceFabric {};
std::shared_ptr<LoopbackDeviceFabric> make_loopback_fabric(int) { throw UsageError(kNoCuda); }
std::unique_ptr<Implementation> make_loopback_scheduled(const Algorithm&, std::shared_ptr<DeviceContext>,
                                                        std::shared_ptr<LoopbackDeviceFabric>) {
  throw UsageError(kNoCuda);
}

}  // namespace cclab
