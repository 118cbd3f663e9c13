#include "model/compute_device.h"

#include <mutex>
#include <new>

namespace cclab::train {
namespace {

class HostDevice : public ComputeDevice {
 public:
  std::string name() const override { return "host"; }
  void* allocate(size_t bytes) override { return ::operator new (bytes, std::align_val_t{64}); }
  void release(void* pointer) override { ::operator delete (pointer, std::align_val_t{64}); }
};

std::mutex device_mutex;
const std::shared_ptr<ComputeDevice>& host_device() {
  static const std::shared_ptr<ComputeDevice> host = std::make_shared<HostDevice>();
  return host;
}
std::shared_ptr<ComputeDevice>& current_device() {
  static std::shared_ptr<ComputeDevice> device = host_device();
  return device;
}

// Each buffer starts with a header naming the device that allocated it; 64 bytes keep the data
// behind it aligned as the allocator promises.
struct alignas(64) BufferHeader {
  std::shared_ptr<ComputeDevice> device;
};

}  // namespace

ComputeDevice& compute_device() {
  std::lock_guard lock(device_mutex);
  return *current_device();
}

void use_compute_device(std::shared_ptr<ComputeDevice> device) {
  std::lock_guard lock(device_mutex);
  current_device() = device ? std::move(device) : host_device();
}

void* allocate_buffer(size_t bytes) {
  std::shared_ptr<ComputeDevice> device;
  {
    std::lock_guard lock(device_mutex);
    device = current_device();
  }
  void* block = device->allocate(sizeof(BufferHeader) + bytes);
  auto* header = new (block) BufferHeader{std::move(device)};
  return header + 1;
}

void release_buffer(void* pointer) {
  if (!pointer) return;
  auto* header = static_cast<BufferHeader*>(pointer) - 1;
  std::shared_ptr<ComputeDevice> device = std::move(header->device);
  header->~BufferHeader();
  device->release(header);
}

}  // namespace cclab::train
