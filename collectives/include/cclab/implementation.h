// One way to run a collective, hand-written or vendor, behind one interface for the drivers.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cclab/algorithm.h"
#include "cclab/comm.h"
#include "cclab/cost_model.h"
#include "cclab/host_executor.h"
#include "cclab/memory_space.h"
#include "cclab/simulator.h"

namespace cclab {

/// What `auto` runs for the prepared size, and how it came to it.
struct AutoChoice {
  std::string algorithm;
  /// "model": the only candidate the cost model predicts within its tolerance of the best;
  /// "measured": the fastest of those candidates when timed on the spot.
  std::string by;
  /// The timed candidates and their probe medians (slowest rank's), when measured.
  std::vector<std::pair<std::string, double>> probe_us;
};

/// A fixed run of calls captured once as a CUDA graph (nccl-tests' -G), replayed on demand.
class GraphReplay {
 public:
  virtual ~GraphReplay() = default;
  /// Launches the graph once and waits for it: the GPU time of all its calls, microseconds.
  virtual double replay_us(Deadline deadline) = 0;
};

class Implementation {
 public:
  virtual ~Implementation() = default;
  /// As shown in tables and results: "ring", "mpi".
  virtual std::string name() const = 0;
  /// What carried the bytes: "ucx", "mpi".
  virtual std::string transport() const = 0;
  /// Called once per message size before any run; may build schedules. Collective over ranks.
  virtual void prepare(const CollectiveArgs& args) = 0;
  /// One call of the collective (output == input for the in-place form) on buffers of the memory
  /// the implementation works on. Device implementations only enqueue the call: see wait().
  virtual void run(const void* input, void* output, Deadline deadline) = 0;
  /// Returns when every call run() enqueued is done; TimeoutError once `deadline` passes. Host
  /// implementations are done when run() returns.
  virtual void wait(Deadline) {}
  /// What times this implementation's iterations: the host clock, or events on a device's stream.
  virtual std::unique_ptr<IterationClock> clock() const { return host_clock(); }
  /// `iterations` calls of run() captured into a CUDA graph; nullptr where calls cannot be
  /// captured (host implementations). Traffic counters count the captured calls once.
  virtual std::unique_ptr<GraphReplay> capture(const void* /*input*/, void* /*output*/, int /*iterations*/,
                                               Deadline) {
    return nullptr;
  }
  /// Scratch bytes this implementation needs beyond input and output, for the memory check.
  virtual size_t scratch_bytes(const CollectiveArgs&) const { return 0; }
  /// The simulator's bytes per rank; nullopt for vendor code whose traffic we cannot see.
  virtual std::optional<PredictedTraffic> predicted_traffic() const { return std::nullopt; }
  /// The counters that measure this implementation's traffic, counted as it posts its messages;
  /// nullptr for vendor code, whose traffic we cannot see.
  virtual const TrafficCounters* traffic() const { return nullptr; }
  /// The cost model's time for the prepared size; nullopt where no model applies (vendors).
  virtual std::optional<double> predicted_time_us(const CostProfile&) const { return std::nullopt; }
  /// For `auto`: what it chose for the prepared size; nullopt for everything else.
  virtual std::optional<AutoChoice> choice() const { return std::nullopt; }
};

/// A hand-written algorithm: its Schedule run by the HostExecutor over the Comm's transport.
/// `profile` (which must outlive it) says from which footprint a call's data leaves the caches: from
/// there on its final copies stream to memory (CompiledSchedule::stream_final_copies).
class ScheduledImplementation : public Implementation {
 public:
  ScheduledImplementation(const Algorithm& algorithm, Comm& comm, const CostProfile& profile);
  std::string name() const override { return algorithm_.name; }
  std::string transport() const override { return comm_.transport().name(); }
  void prepare(const CollectiveArgs& args) override;
  void run(const void* input, void* output, Deadline deadline) override;
  size_t scratch_bytes(const CollectiveArgs& args) const override;
  std::optional<PredictedTraffic> predicted_traffic() const override { return predicted_; }
  const TrafficCounters* traffic() const override { return &comm_.transport().counters(); }
  std::optional<double> predicted_time_us(const CostProfile& profile) const override;
  const Algorithm& algorithm() const { return algorithm_; }

 private:
  // Rank `rank`'s schedule for `args`; its peer reads go through the transport where this job's
  // ranks cannot address each other's memory.
  Schedule schedule_for(int rank, const CollectiveArgs& args) const;

  const Algorithm& algorithm_;
  Comm& comm_;
  const CostProfile& profile_;
  HostExecutor executor_;
  CollectiveArgs args_;
  std::unique_ptr<CompiledSchedule> schedule_;
  PredictedTraffic predicted_;
};

/// Vendor implementations by name ("mpi"); nullptr if the name is not a vendor implementation.
std::unique_ptr<Implementation> make_vendor_implementation(Collective collective, const std::string& name,
                                                           Comm& comm);
/// Vendor names this build has, for `cclab info` and error messages.
std::vector<std::string> vendor_implementation_names(Collective collective);
/// True when `name` needs its ranks started by mpirun.
bool needs_mpi_launch(const std::string& name);

/// `auto`: for each size, the fastest hand-written algorithm: the one with the lowest predicted time
/// under `profile` as it stands at prepare(), unless others are predicted within the model's
/// tolerance of it; then the first run() after prepare() times those (on the caller's arrays out of
/// place, on a buffer of its own in place) and keeps the fastest, and choice() says so from then on.
/// `profile` must outlive the implementation (a caller may refresh it between sizes).
std::unique_ptr<Implementation> make_auto_implementation(Collective collective, Comm& comm,
                                                         const CostProfile& profile);

/// Any implementation by name: "auto", a registered algorithm or a vendor. Throws UsageError for
/// others. `profile` is what `auto` selects with; it must outlive the implementation.
std::unique_ptr<Implementation> make_implementation(Collective collective, const std::string& name, Comm& comm,
                                                   const CostProfile& profile);

}  // namespace cclab
