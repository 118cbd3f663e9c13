// Runs a Schedule on host memory over a Transport (DESIGN 3.3).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "cclab/deadline.h"
#include "cclab/dtype.h"
#include "cclab/schedule.h"
#include "cclab/transport.h"

namespace cclab {

/// A Schedule with its reverse dependencies precomputed, built once and run many times.
class CompiledSchedule {
 public:
  explicit CompiledSchedule(Schedule schedule);
  const Schedule& schedule() const { return schedule_; }
  const std::vector<uint32_t>& dependents(uint32_t step) const { return dependents_[step]; }
  const std::vector<uint32_t>& roots() const { return roots_; }

 private:
  Schedule schedule_;
  std::vector<std::vector<uint32_t>> dependents_;
  std::vector<uint32_t> roots_;  // steps without dependencies, in schedule order
};

/// The memory one call works on.
struct HostBuffers {
  const void* input = nullptr;
  void* output = nullptr;  // equal to input for the in-place form
};

/// Posts receives as soon as their slot is free, sends as soon as their data is ready, and runs
/// each reduction when its segment arrived, so transfers of later segments overlap with it.
class HostExecutor {
 public:
  explicit HostExecutor(Transport& transport) : transport_(transport) {}

  /// Runs `compiled` for one collective call. `sequence` keeps concurrent or consecutive calls
  /// apart on the wire; every rank must pass the same value for the same call.
  /// Throws TimeoutError naming the peers still awaited if `deadline` passes.
  void run(const CompiledSchedule& compiled, HostBuffers buffers, DataType type, ReduceOp op, uint64_t sequence,
           Deadline deadline);

 private:
  Transport& transport_;
  std::vector<std::byte> scratch_;
  // Per-run state, kept to avoid allocating on every call.
  std::vector<uint32_t> waiting_on_;
  std::vector<uint32_t> ready_;
  std::vector<std::pair<uint32_t, RequestPtr>> in_flight_;
};

}  // namespace cclab
