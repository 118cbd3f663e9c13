// Runs a Schedule on host memory over a Transport (DESIGN 3.3).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "cclab/deadline.h"
#include "cclab/dtype.h"
#include "cclab/peer_memory.h"
#include "cclab/schedule.h"
#include "cclab/trace.h"
#include "cclab/transport.h"

namespace cclab {

/// A Schedule with its reverse dependencies precomputed, built once and run many times.
class CompiledSchedule {
 public:
  explicit CompiledSchedule(Schedule schedule);
  const Schedule& schedule() const { return schedule_; }
  const std::vector<uint32_t>& dependents(uint32_t step) const { return dependents_[step]; }
  const std::vector<uint32_t>& roots() const { return roots_; }

  /// Whether the final copies stream (cclab/streaming_copy.h): the copy and read steps into the
  /// output that no step of the schedule reads again. For calls whose arrays exceed the caches,
  /// out of place (in place, input and output share memory the schedule's regions do not show).
  /// The final copies are found the first time this is turned on.
  void stream_final_copies(bool on);
  bool streams(uint32_t step) const { return streams_final_copies_ && final_copies_[step]; }

  /// Finds the final reductions into the output whose sums no other step reads (a reduce-scatter's
  /// own block), which a SumConsumer may take instead of their sums being written. Out of place, or
  /// in place where no step reads the output through the input after its final reduction (the
  /// regions do not show that memory is shared: the direct reduce-scatter reads its own block
  /// through the input only in the reductions that make it).
  void find_consumed_reductions();
  /// Whether every final reduction into the output can be consumed (false until they were found).
  bool every_reduction_consumable() const { return every_reduction_consumable_; }
  bool consumes(uint32_t step) const { return consumed_reductions_[step]; }

 private:
  Schedule schedule_;
  std::vector<std::vector<uint32_t>> dependents_;
  std::vector<uint32_t> roots_;  // steps without dependencies, in schedule order
  std::vector<bool> final_copies_;  // found when streaming is first turned on
  bool streams_final_copies_ = false;
  std::vector<bool> consumed_reductions_;  // found when find_consumed_reductions is first called
  bool every_reduction_consumable_ = false;
};

/// Takes the operands of a final reduction into the output in place of their sum: `count` elements
/// of `source` and `operand` that would have summed into the output from element `offset` on.
/// E.g. an SGD step that reads a reduce-scatter's sum as it is made, instead of the executor writing
/// the sum and the step reading it back.
using SumConsumer =
    std::function<void(const std::byte* source, const std::byte* operand, size_t count, size_t offset)>;

/// The memory one call works on.
struct HostBuffers {
  const void* input = nullptr;
  void* output = nullptr;  // equal to input for the in-place form
};

/// One collective call in progress. It moves only when polled (test/wait), so a caller can
/// interleave several calls with its own work, e.g. gradient buckets during backward.
class PendingCollective {
 public:
  /// `scratch` must hold the schedule's scratch_count elements; it is kept alive by the call.
  /// `peers` carries the schedule's peer reads (null when it has none). `consume`, where given,
  /// takes every final reduction into the output (a sum; `compiled` must have found them all
  /// consumable), and the output holds what the reductions before the last left there (on two ranks,
  /// this rank's own values).
  PendingCollective(Transport& transport, PeerMemory* peers, const CompiledSchedule& compiled, HostBuffers buffers,
                    DataType type, ReduceOp op, uint64_t sequence, std::shared_ptr<std::vector<std::byte>> scratch,
                    SumConsumer consume = {});
  PendingCollective(const PendingCollective&) = delete;
  PendingCollective& operator=(const PendingCollective&) = delete;

  /// Starts another call in this object, reusing its memory (the previous call must be done).
  void restart(const CompiledSchedule& compiled, HostBuffers buffers, DataType type, ReduceOp op, uint64_t sequence,
               std::shared_ptr<std::vector<std::byte>> scratch);

  /// Polls the transport once and finishes the transfers that completed; true once every step
  /// completed.
  bool test();
  /// Polls until complete; TimeoutError naming the peers still awaited once `deadline` passes.
  void wait(Deadline deadline);
  bool done() const { return completed_ == total_; }

 private:
  std::byte* address(const Region& region) const;
  PeerMemory& peers() const;
  void start_ready_steps();
  /// Finishes `step` now if `request` already completed, else keeps it in flight.
  void track(uint32_t step, RequestPtr request, double posted_us);
  void finish(uint32_t step);
  /// Finishes a transfer's step (and traces it when the bench traces schedules).
  void finish_transfer(uint32_t step, double posted_us);
  void trace_step(const Step& step, double start_us);
  /// Whether step `step`'s copy of `bytes` streams: the schedule says so, and they are not few.
  bool streams(uint32_t step, size_t bytes) const;
  /// Whether step `step`'s reduction goes to consume_ instead of the output.
  bool consumed(uint32_t step) const { return consume_ && compiled_->consumes(step); }
  /// Hands final reduction `step`'s operands, `operand` the peer's data or the step's operand, to consume_.
  void consume_sum(uint32_t step, const std::byte* operand);
  static constexpr size_t kStreamingCopyFromBytes = 64 << 10;

  Transport& transport_;
  PeerMemory* peers_;
  SumConsumer consume_;
  const CompiledSchedule* compiled_;
  HostBuffers buffers_;
  DataType type_;
  ReduceOp op_;
  uint64_t sequence_;
  std::shared_ptr<std::vector<std::byte>> scratch_;
  size_t element_;
  int divisor_;
  size_t total_, completed_ = 0;
  std::vector<uint32_t> waiting_on_;
  std::vector<uint32_t> ready_;  // a stack: lowest index on top
  struct InFlight {
    uint32_t step;
    RequestPtr request;
    double posted_us;  // on trace_'s clock
  };
  std::vector<InFlight> in_flight_;
  // Records each step as a span when the bench traces schedules (cclab/trace.h); null otherwise.
  TraceRecorder* trace_ = nullptr;
};

/// Posts receives as soon as their slot is free, sends as soon as their data is ready, and runs
/// each reduction when its segment arrived, so transfers of later segments overlap with it.
class HostExecutor {
 public:
  /// `peers`: what carries the peer reads of schedules that have them (null where none do).
  explicit HostExecutor(Transport& transport, PeerMemory* peers = nullptr) : transport_(transport), peers_(peers) {}

  /// Runs `compiled` for one collective call to completion. `sequence` keeps concurrent or
  /// consecutive calls apart on the wire; every rank must pass the same value for the same call.
  /// Throws TimeoutError naming the peers still awaited if `deadline` passes.
  void run(const CompiledSchedule& compiled, HostBuffers buffers, DataType type, ReduceOp op, uint64_t sequence,
           Deadline deadline);

  /// Starts a call and returns at once; the caller polls it. Calls in flight at the same time
  /// need distinct sequence numbers; each gets its own scratch, reused by later calls. `consume`:
  /// see PendingCollective.
  std::unique_ptr<PendingCollective> start(const CompiledSchedule& compiled, HostBuffers buffers, DataType type,
                                           ReduceOp op, uint64_t sequence, SumConsumer consume = {});

 private:
  // A scratch buffer no call in flight holds, grown to `bytes` (buffers are reused so large
  // scratch is not faulted in again on every call); none for 0 bytes.
  std::shared_ptr<std::vector<std::byte>> free_scratch(size_t bytes);

  Transport& transport_;
  PeerMemory* peers_;
  std::unique_ptr<PendingCollective> blocking_call_;  // reused by run(): no allocation per call
  std::vector<std::shared_ptr<std::vector<std::byte>>> scratch_pool_;
};

}  // namespace cclab
