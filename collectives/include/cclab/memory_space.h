// Where the bench's arrays live (--mem host|cuda) and how its iterations are timed, behind
// interfaces free of CUDA types: the drivers are the same code for host and device memory.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "cclab/deadline.h"

namespace cclab {

class Comm;

/// One kind of memory: host (page-aligned, private to the rank) or one GPU's.
class MemorySpace {
 public:
  virtual ~MemorySpace() = default;
  /// As --mem names it: "host", "cuda".
  virtual std::string name() const = 0;
  /// Memory of at least `bytes` (never null, also for 0 bytes), freed when the last copy goes.
  virtual std::shared_ptr<std::byte> allocate(size_t bytes) = 0;
  /// Host to this space, this space to host, and zeroing; they return when done.
  virtual void copy_in(void* destination, const void* host, size_t bytes) = 0;
  virtual void copy_out(void* host, const void* source, size_t bytes) = 0;
  virtual void zero(void* destination, size_t bytes) = 0;
  /// Bytes free for new arrays, for the memory check before a sweep.
  virtual size_t available_bytes() const = 0;
  /// True when the ranks of a node share this memory (host), false when each has its own (a GPU).
  virtual bool shared_by_node_ranks() const = 0;
  /// True when the host can read and write this memory directly (no copy_in/copy_out needed).
  virtual bool host_accessible() const = 0;
};

std::unique_ptr<MemorySpace> host_memory();
/// Host memory registered with `comm` (--mem shared): every allocate() is collective over its
/// ranks, and peers read the arrays in place (cclab/peer_memory.h). Null where the Comm has no
/// PeerMemory (Comm::why_no_peer_memory says why).
std::unique_ptr<MemorySpace> node_shared_host_memory(Comm& comm);

/// Times the iterations of one implementation: start() before a call, stop() after it.
class IterationClock {
 public:
  virtual ~IterationClock() = default;
  virtual void start() = 0;
  virtual void stop() = 0;
  /// The times of the iterations since the last call, in microseconds, in order; waits for them
  /// to be known (device clocks) until `deadline`.
  virtual std::vector<double> take_times_us(Deadline deadline) = 0;
};

/// The host's steady clock, for implementations whose run() returns when the call is done.
std::unique_ptr<IterationClock> host_clock();

}  // namespace cclab
