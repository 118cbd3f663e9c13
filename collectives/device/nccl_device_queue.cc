#include "nccl_device_queue.h"

#include "cclab/cuda_reduce.h"

namespace cclab {

NcclDeviceQueue::NcclDeviceQueue(DeviceContext& device, Deadline deadline)
    : DeviceQueue(device.rank(), device.size()),
      device_(device),
      nccl_(nccl_or_refuse()),
      comm_(device.nccl(deadline)),
      timeout_s_(device.timeout_s()) {}

void NcclDeviceQueue::group_start() {
  device_.check_nccl(nccl_.ncclGroupStart(), "ncclGroupStart", Deadline::after(timeout_s_));
}

// Messages are bytes to NCCL: each pair's sizes agree by construction (compile_device_plans).
void NcclDeviceQueue::send(int peer, const void* buffer, size_t bytes) {
  device_.check_nccl(nccl_.ncclSend(buffer, bytes, ncclUint8, peer, comm_, device_.stream()), "ncclSend",
                     Deadline::after(timeout_s_));
}

void NcclDeviceQueue::recv(int peer, void* buffer, size_t bytes) {
  device_.check_nccl(nccl_.ncclRecv(buffer, bytes, ncclUint8, peer, comm_, device_.stream()), "ncclRecv",
                     Deadline::after(timeout_s_));
}

void NcclDeviceQueue::group_end() {
  device_.check_nccl(nccl_.ncclGroupEnd(), "ncclGroupEnd", Deadline::after(timeout_s_));
}

void NcclDeviceQueue::reduce(void* dst, const void* a, const void* b, size_t count, DataType type, ReduceOp op,
                             int divisor) {
  cuda::reduce(dst, a, b, count, type, op, divisor, device_.stream());
}

void NcclDeviceQueue::copy(void* dst, const void* source, size_t bytes) {
  check_cuda(cudaMemcpyAsync(dst, source, bytes, cudaMemcpyDeviceToDevice, device_.stream()), "cudaMemcpyAsync");
}

void NcclDeviceQueue::synchronize(Deadline deadline) { device_.synchronize(deadline); }

}  // namespace cclab
