// A rank's GPU: choosing the device, its stream, its NCCL communicator, and waits that keep the
// job's deadline (NCCL calls can block forever on a dead peer, so the communicator is non-blocking
// and every wait polls, as PyTorch's NCCL watchdog does).
#include "device_context.h"

#include <algorithm>
#include <cstring>
#include <thread>

#include "cclab/comm.h"
#include "cclab/error.h"
#include "cclab/memory_space.h"
#include "patterns/hierarchy.h"

namespace cclab {

void check_cuda(cudaError_t status, const std::string& what) {
  if (status != cudaSuccess) throw Error(what + ": " + cudaGetErrorString(status));
}

std::string cuda_unavailable_reason() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status == cudaErrorInsufficientDriver)
    return "no CUDA driver, or one older than this build's CUDA " + std::to_string(CUDART_VERSION / 1000) + "." +
           std::to_string(CUDART_VERSION % 1000 / 10) + " needs";
  if (status == cudaErrorNoDevice || (status == cudaSuccess && count == 0)) return "no CUDA device";
  if (status != cudaSuccess) return std::string("no usable CUDA device (") + cudaGetErrorString(status) + ")";
  return "";
}

int cuda_device_count() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess ? count : 0;
}

std::string nccl_unavailable_reason() {
  std::string why;
  return load_nccl(&why) ? "" : why;
}

std::string nccl_version() {
  const NcclLibrary* library = load_nccl();
  return library ? library->version : "";
}

DeviceContext::DeviceContext(Bootstrap& bootstrap, Topology topology, int device, double timeout_s)
    : bootstrap_(bootstrap), topology_(std::move(topology)), device_(device), timeout_s_(timeout_s) {
  make_current();
  cudaDeviceProp properties{};
  check_cuda(cudaGetDeviceProperties(&properties, device), "cudaGetDeviceProperties");
  name_ = "cuda:" + std::to_string(device) + " " + properties.name;
  check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
}

DeviceContext::~DeviceContext() {
  if (nccl_) {
    const NcclLibrary& nccl = *load_nccl();
    // Finalize flushes this rank's operations; a communicator that fails to is aborted instead.
    ncclResult_t status = nccl.ncclCommFinalize(nccl_);
    const Deadline deadline = Deadline::after(timeout_s_);
    while (status == ncclSuccess || status == ncclInProgress) {
      if (nccl.ncclCommGetAsyncError(nccl_, &status) != ncclSuccess || status != ncclInProgress) break;
      if (deadline.passed()) break;
      std::this_thread::yield();
    }
    if (status == ncclSuccess)
      nccl.ncclCommDestroy(nccl_);
    else
      nccl.ncclCommAbort(nccl_);
  }
  if (stream_) cudaStreamDestroy(stream_);
}

void DeviceContext::make_current() const { check_cuda(cudaSetDevice(device_), "cudaSetDevice"); }

ncclComm_t DeviceContext::nccl(Deadline deadline) {
  if (nccl_) return nccl_;
  const NcclLibrary& nccl = nccl_or_refuse();
  ncclUniqueId id{};
  if (rank() == 0) check_nccl(nccl.ncclGetUniqueId(&id), "ncclGetUniqueId", deadline);
  const std::string mine = rank() == 0 ? std::string(id.internal, sizeof id.internal) : std::string();
  const std::string root = bootstrap_.allgather(mine)[0];
  std::memcpy(id.internal, root.data(), sizeof id.internal);
  make_current();
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  ncclComm_t created = nullptr;
  const ncclResult_t status = nccl.ncclCommInitRankConfig(&created, size(), id, rank(), &config);
  nccl_ = created;  // set first, so a failed initialization is aborted
  check_nccl(status, "ncclCommInitRankConfig", deadline);
  return nccl_;
}

void DeviceContext::check_nccl(ncclResult_t status, const char* what, Deadline deadline) {
  const NcclLibrary& nccl = *load_nccl();
  while (status == ncclInProgress && nccl_) {
    if (deadline.passed()) abort(std::string(what) + " did not complete before the deadline", true);
    std::this_thread::yield();
    if (nccl.ncclCommGetAsyncError(nccl_, &status) != ncclSuccess) break;
  }
  if (status == ncclSuccess) return;
  const char* last = nccl.ncclGetLastError(nccl_);
  abort(std::string(what) + " failed: " + nccl.ncclGetErrorString(status) +
            (last && *last ? std::string(" (") + last + ")" : std::string()),
        false);
}

void DeviceContext::synchronize(Deadline deadline) {
  const NcclLibrary* nccl = nccl_ ? load_nccl() : nullptr;
  Backoff backoff(/*always_yield=*/true);
  for (;;) {
    const cudaError_t status = cudaStreamQuery(stream_);
    if (status == cudaSuccess) return;
    if (status != cudaErrorNotReady) check_cuda(status, "rank " + std::to_string(rank()) + ": the stream failed");
    if (nccl) {
      ncclResult_t error = ncclSuccess;
      if (nccl->ncclCommGetAsyncError(nccl_, &error) == ncclSuccess && error != ncclSuccess && error != ncclInProgress)
        abort(std::string("NCCL reported ") + nccl->ncclGetErrorString(error) + " (a peer may have died)", false);
    }
    if (backoff.expired(deadline))
      abort("the device work did not complete before the deadline (a peer may have died)", true);
    backoff.idle();
  }
}

void DeviceContext::abort(const std::string& why, bool timed_out) {
  if (nccl_) {
    load_nccl()->ncclCommAbort(nccl_);
    nccl_ = nullptr;
  }
  const std::string message = "rank " + std::to_string(rank()) + " on " + name_ + ": " + why;
  if (timed_out) throw TimeoutError(message);
  throw Error(message);
}

std::shared_ptr<DeviceContext> open_device(Bootstrap& bootstrap, const Topology& topology, double timeout_s,
                                           int device) {
  if (const std::string why = cuda_unavailable_reason(); !why.empty()) throw UsageError("--mem cuda: " + why);
  if (device >= 0) return std::make_shared<DeviceContext>(bootstrap, topology, device, timeout_s);
  const NodeLayout layout(topology.node_of_rank);
  const int node = layout.node_of(bootstrap.rank()), local_rank = layout.local_index(bootstrap.rank());
  const int local_ranks = int(layout.members(node).size());
  const int devices = cuda_device_count();
  if (local_ranks > devices)
    throw UsageError("--mem cuda: " + std::to_string(local_ranks) + " ranks on node " + std::to_string(node) + " but " +
                     std::to_string(devices) + " GPU(s): each rank needs its own (NCCL " + nccl_version() +
                     " refuses two ranks on one GPU)");
  return std::make_shared<DeviceContext>(bootstrap, topology, local_rank, timeout_s);
}

std::shared_ptr<DeviceContext> open_device(Comm& comm) {
  return open_device(comm.bootstrap(), comm.topology(), comm.timeout_s());
}

std::string describe_device(const DeviceContext& device) { return device.name(); }

// ---------------------------------------------------------------------------------------------
// Device memory and the clock of device implementations.

namespace {

// Copies and fills go on the context's stream, which does not synchronize with CUDA's legacy
// default stream, and are waited for there.
class DeviceMemory : public MemorySpace {
 public:
  explicit DeviceMemory(std::shared_ptr<DeviceContext> device) : device_(std::move(device)) {}
  std::string name() const override { return "cuda"; }

  std::shared_ptr<std::byte> allocate(size_t bytes) override {
    device_->make_current();
    void* data = nullptr;
    check_cuda(cudaMalloc(&data, std::max<size_t>(bytes, 256)), "cudaMalloc of " + std::to_string(bytes) + " bytes");
    std::shared_ptr<std::byte> array(static_cast<std::byte*>(data), [](std::byte* p) { cudaFree(p); });
    zero(data, std::max<size_t>(bytes, 256));
    return array;
  }
  void copy_in(void* destination, const void* host, size_t bytes) override {
    device_->make_current();
    check_cuda(cudaMemcpyAsync(destination, host, bytes, cudaMemcpyHostToDevice, device_->stream()),
               "cudaMemcpyAsync to the device");
    finish();
  }
  void copy_out(void* host, const void* source, size_t bytes) override {
    device_->make_current();
    check_cuda(cudaMemcpyAsync(host, source, bytes, cudaMemcpyDeviceToHost, device_->stream()),
               "cudaMemcpyAsync from the device");
    finish();
  }
  void zero(void* destination, size_t bytes) override {
    device_->make_current();
    check_cuda(cudaMemsetAsync(destination, 0, bytes, device_->stream()), "cudaMemsetAsync");
    finish();
  }
  size_t available_bytes() const override {
    device_->make_current();
    size_t free = 0, total = 0;
    check_cuda(cudaMemGetInfo(&free, &total), "cudaMemGetInfo");
    return free;
  }
  bool shared_by_node_ranks() const override { return false; }
  bool host_accessible() const override { return false; }

 private:
  void finish() { device_->synchronize(Deadline::after(device_->timeout_s())); }

  std::shared_ptr<DeviceContext> device_;
};

// A pair of events per iteration, recorded on the stream around the iteration's work; the times
// are read once the stream has run them.
class EventClock : public IterationClock {
 public:
  explicit EventClock(DeviceContext& device) : device_(device) {}
  ~EventClock() override {
    for (auto [start, stop] : events_) {
      cudaEventDestroy(start);
      cudaEventDestroy(stop);
    }
  }
  void start() override {
    if (used_ == events_.size()) {
      cudaEvent_t start = nullptr, stop = nullptr;
      check_cuda(cudaEventCreate(&start), "cudaEventCreate");
      if (const cudaError_t status = cudaEventCreate(&stop); status != cudaSuccess) {
        cudaEventDestroy(start);
        check_cuda(status, "cudaEventCreate");
      }
      events_.emplace_back(start, stop);
    }
    check_cuda(cudaEventRecord(events_[used_].first, device_.stream()), "cudaEventRecord");
  }
  void stop() override { check_cuda(cudaEventRecord(events_[used_++].second, device_.stream()), "cudaEventRecord"); }
  std::vector<double> take_times_us(Deadline deadline) override {
    device_.synchronize(deadline);
    std::vector<double> times;
    for (size_t i = 0; i < used_; ++i) {
      float ms = 0;
      check_cuda(cudaEventElapsedTime(&ms, events_[i].first, events_[i].second), "cudaEventElapsedTime");
      times.push_back(double(ms) * 1e3);
    }
    used_ = 0;
    return times;
  }

 private:
  DeviceContext& device_;
  std::vector<std::pair<cudaEvent_t, cudaEvent_t>> events_;
  size_t used_ = 0;
};

}  // namespace

std::unique_ptr<IterationClock> device_clock(DeviceContext& device) { return std::make_unique<EventClock>(device); }

std::unique_ptr<MemorySpace> device_memory(std::shared_ptr<DeviceContext> device) {
  return std::make_unique<DeviceMemory>(std::move(device));
}

}  // namespace cclab
