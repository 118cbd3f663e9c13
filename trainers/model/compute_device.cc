#include "model/compute_device.h"

#include <atomic>
#include <mutex>
#include <new>
#include <vector>

namespace cclab::train {
namespace {

class HostDevice : public ComputeDevice {
 public:
  std::string name() const override { return "host"; }
  void* allocate(size_t bytes) override { return ::operator new (bytes, std::align_val_t{64}); }
  void release(void* pointer) override { ::operator delete (pointer, std::align_val_t{64}); }
};

// Every device ever installed, kept for the life of the process: buffers name theirs by address
// and may outlive its use. Left undestroyed at exit, as a GPU's teardown then is the driver's.
std::mutex installed_mutex;
std::vector<std::shared_ptr<ComputeDevice>>& installed() {
  static auto* devices = new std::vector<std::shared_ptr<ComputeDevice>>{std::make_shared<HostDevice>()};
  return *devices;
}
// Read on every loss, update and allocation, written once a run: no lock on the way in.
std::atomic<ComputeDevice*>& current() {
  static std::atomic<ComputeDevice*> device{installed().front().get()};
  return device;
}

// Each buffer starts with a header naming the device that allocated it and its size; 64 bytes keep
// the data behind it aligned as the allocator promises.
struct alignas(64) BufferHeader {
  ComputeDevice* device;
  size_t bytes;
};

// What this thread's allocations hold, less what it released (a rank's buffers are made and freed
// by its own thread).
thread_local int64_t thread_bytes = 0;

}  // namespace

ComputeDevice& compute_device() { return *current().load(std::memory_order_acquire); }

void use_compute_device(std::shared_ptr<ComputeDevice> device) {
  std::lock_guard lock(installed_mutex);
  if (!device) {
    current().store(installed().front().get(), std::memory_order_release);
    return;
  }
  installed().push_back(device);
  current().store(device.get(), std::memory_order_release);
}

void* allocate_buffer(size_t bytes) {
  ComputeDevice* device = &compute_device();
  void* block = device->allocate(sizeof(BufferHeader) + bytes);
  thread_bytes += int64_t(bytes);
  return new (block) BufferHeader{device, bytes} + 1;
}

void release_buffer(void* pointer) {
  if (!pointer) return;
  BufferHeader* header = static_cast<BufferHeader*>(pointer) - 1;
  thread_bytes -= int64_t(header->bytes);
  header->device->release(header);
}

int64_t thread_buffer_bytes() { return thread_bytes; }

}  // namespace cclab::train
