// The host side of cclab/memory_space.h: page-aligned private memory and the steady clock.
#include <cstring>
#include <fstream>
#include <iostream>
#include <utility>

#include "cclab/comm.h"
#include "cclab/host_buffer.h"
#include "cclab/memory_space.h"

namespace cclab {
namespace {

class HostMemory : public MemorySpace {
 public:
  std::string name() const override { return "host"; }

  std::shared_ptr<std::byte> allocate(size_t bytes) override {
    auto buffer = std::make_shared<HostBuffer>(bytes);
    return std::shared_ptr<std::byte>(buffer, buffer->data());
  }
  void copy_in(void* destination, const void* host, size_t bytes) override {
    if (destination != host) std::memcpy(destination, host, bytes);
  }
  void copy_out(void* host, const void* source, size_t bytes) override {
    if (host != source) std::memcpy(host, source, bytes);
  }
  void zero(void* destination, size_t bytes) override { std::memset(destination, 0, bytes); }

  size_t available_bytes() const override {
    std::ifstream meminfo("/proc/meminfo");
    std::string key, unit;
    size_t kib = 0;
    while (meminfo >> key >> kib >> unit)
      if (key == "MemAvailable:") return kib * 1024;
    return SIZE_MAX;
  }
  bool shared_by_node_ranks() const override { return true; }
  bool host_accessible() const override { return true; }
};

// Host memory registered with the communicator: every array is allocated collectively in
// node-shared memory, so the ranks' direct algorithms read it where it lies.
class NodeSharedHostMemory : public HostMemory {
 public:
  NodeSharedHostMemory(Comm& comm, PeerMemory& peers) : comm_(comm), peers_(peers) {}
  std::string name() const override { return "shared"; }
  std::shared_ptr<std::byte> allocate(size_t bytes) override {
    std::string why_not;
    if (auto array = peers_.allocate(comm_, bytes, &why_not)) return array;
    if (comm_.rank() == 0)
      std::cerr << "cclab: --mem shared: " << why_not << "; this array is private, and peers read it through a copy\n";
    return HostMemory::allocate(bytes);
  }

 private:
  Comm& comm_;
  PeerMemory& peers_;
};

class HostClock : public IterationClock {
 public:
  void start() override { started_ = Clock::now(); }
  void stop() override { times_.push_back(std::chrono::duration<double, std::micro>(Clock::now() - started_).count()); }
  std::vector<double> take_times_us(Deadline) override { return std::exchange(times_, {}); }

 private:
  Clock::time_point started_;
  std::vector<double> times_;
};

}  // namespace

std::unique_ptr<MemorySpace> host_memory() { return std::make_unique<HostMemory>(); }

std::unique_ptr<MemorySpace> node_shared_host_memory(Comm& comm) {
  if (!comm.peer_memory()) return nullptr;
  return std::make_unique<NodeSharedHostMemory>(comm, *comm.peer_memory());
}
std::unique_ptr<IterationClock> host_clock() { return std::make_unique<HostClock>(); }

}  // namespace cclab
