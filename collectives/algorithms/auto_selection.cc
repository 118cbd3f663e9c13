// `--impl auto`: for each message size, run the hand-written algorithm that is fastest for this
// rank count and topology (DESIGN 3.3). The cost model ranks the candidates. Those it cannot tell
// apart, predicted within what its accuracy allows of the best (kMostPlausibleRatio), are timed in
// the first call after prepare(), on the caller's arrays, and the fastest by the slowest rank's
// median wins; a candidate the model rates clearly ahead wins without a probe. The caller's arrays,
// not buffers of auto's own: an algorithm can time slower on other buffers than on the caller's
// and lose picks it should win.
//
// Why measure at all: the model is calibrated once per job, while what a VM's cores share (an L3
// or not) moves under it, and with it the sizes where one algorithm overtakes another; calibrating
// more does not follow the moves. A probe of the finalists costs a few milliseconds per size (under
// a second at 128 MiB) and sees the machine as it is. Figures: docs/measurements.md.
//
// Every rank gathers every rank's probe times and decides from the same numbers, so every rank
// picks the same algorithm without being told.
#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>

#include "cclab/error.h"
#include "cclab/host_buffer.h"
#include "cclab/implementation.h"

namespace cclab {
namespace {

// The model is held to 25% of measured time from 64 KiB up. If every prediction is within that,
// the fastest algorithm's prediction is at most 1.25/0.75 = 5/3 of the lowest one: candidates up
// to that ratio may really be the fastest.
constexpr double kModelError = 0.25;
constexpr double kMostPlausibleRatio = (1 + kModelError) / (1 - kModelError);
// Probe. Calls under a millisecond: one row per candidate, untimed calls and then timed ones, as
// a loop of calls meets them. Longer calls: rounds of turns (an untimed call, a barrier, then the
// timed ones), as the bench measures them, so a drift of the machine over the seconds they take lands
// on every candidate. Before the first timed call the first candidate runs about kSettleUs of
// untimed calls: the control traffic just before a size (the bootstrap's barriers and allgathers)
// slows the calls right after it. A count of calls, not a time, so every rank makes the same calls.
constexpr double kSettleUs = 1000;
constexpr int kMostSettleCalls = 200;
constexpr double kLongCallUs = 1000;
constexpr double kProbeBudgetUs = 3000;  // predicted time of a candidate's timed calls, about
constexpr int kShortCallWarmups = 5, kMostShortCalls = 30;
constexpr int kLongCallRounds = 3, kMostLongCallsPerRound = 10;

// The in-place probe's page-aligned buffer, as the callers' arrays are; grown to the largest size prepared.
class ProbeBuffer {
 public:
  std::byte* reserve(size_t bytes) {
    if (!buffer_ || bytes > capacity_) buffer_ = std::make_unique<HostBuffer>(bytes), capacity_ = bytes;
    return buffer_->data();
  }

 private:
  std::unique_ptr<HostBuffer> buffer_;  // zero-filled: valid for every dtype and op, and faulted in
  size_t capacity_ = 0;
};

class AutoImplementation : public Implementation {
 public:
  AutoImplementation(Collective collective, Comm& comm, const CostProfile& profile) : comm_(comm), profile_(profile) {
    for (const Algorithm& algorithm : algorithm_registry())
      if (algorithm.collective == collective)
        candidates_.push_back(std::make_unique<ScheduledImplementation>(algorithm, comm, profile));
    if (candidates_.empty())
      throw UsageError("auto: no hand-written algorithm for " + std::string(collective_name(collective)));
  }
  std::string name() const override { return "auto"; }
  std::string transport() const override { return candidates_.front()->transport(); }

  void prepare(const CollectiveArgs& args) override {
    std::vector<std::pair<double, ScheduledImplementation*>> ranked;
    for (auto& candidate : candidates_) {
      candidate->prepare(args);
      ranked.emplace_back(*candidate->predicted_time_us(profile_), candidate.get());
    }
    std::stable_sort(ranked.begin(), ranked.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<ScheduledImplementation*> finalists;
    for (const auto& [predicted, candidate] : ranked)
      if (predicted <= ranked.front().first * kMostPlausibleRatio) finalists.push_back(candidate);
    // The model's pick stands until a probe (if any) in the first call decides.
    chosen_ = finalists.front();
    choice_ = {chosen_->name(), "model", {}};
    finalists_.clear();
    if (finalists.size() > 1)
      finalists_ = std::move(finalists), args_ = args, best_predicted_us_ = ranked.front().first;
  }

  void run(const void* input, void* output, Deadline deadline) override {
    if (!finalists_.empty()) {
      probe(static_cast<const std::byte*>(input), static_cast<std::byte*>(output));
      finalists_.clear();
    }
    chosen_->run(input, output, deadline);
  }
  size_t scratch_bytes(const CollectiveArgs& args) const override {
    size_t most = 0;
    for (const auto& candidate : candidates_) most = std::max(most, candidate->scratch_bytes(args));
    return most + probe_bytes(args);
  }
  std::optional<PredictedTraffic> predicted_traffic() const override { return chosen_->predicted_traffic(); }
  const TrafficCounters* traffic() const override { return chosen_->traffic(); }
  std::optional<double> predicted_time_us(const CostProfile& profile) const override {
    return chosen_->predicted_time_us(profile);
  }
  std::optional<AutoChoice> choice() const override { return choice_; }

 private:
  // The probe's own buffer: one call's in-place buffer (out of place the probe uses the caller's).
  size_t probe_bytes(const CollectiveArgs& args) const {
    if (!args.inplace) return 0;
    const BufferCounts counts = buffer_counts(args.collective, args.count, comm_.size());
    return std::max(counts.input, counts.output) * dtype_size(args.dtype);
  }

  // Times the finalists in turns and keeps the fastest: on the caller's arrays out of place (each
  // call only reads the input and overwrites the output), on a buffer of auto's own laid out as the
  // caller's in place (the calls would change the caller's data).
  void probe(const std::byte* input, std::byte* output) {
    if (args_.inplace) {
      const BufferCounts counts = buffer_counts(args_.collective, args_.count, comm_.size());
      const size_t element = dtype_size(args_.dtype);
      std::byte* base = inplace_buffer_.reserve(std::max(counts.input, counts.output) * element);
      const InplaceOffsets offsets = inplace_offsets(args_.collective, args_.count, comm_.size(), comm_.rank());
      input = base + offsets.input * element;
      output = base + offsets.output * element;
    }
    const bool long_calls = best_predicted_us_ >= kLongCallUs;
    const int rounds = long_calls ? kLongCallRounds : 1, untimed = long_calls ? 1 : kShortCallWarmups;
    const int per_round = std::clamp(int(kProbeBudgetUs / rounds / std::max(best_predicted_us_, 1e-3)), 1,
                                     long_calls ? kMostLongCallsPerRound : kMostShortCalls);

    // times[f * calls + i]: this rank's time of finalist f's i-th timed call.
    const size_t calls = size_t(rounds * per_round);
    std::vector<double> times(finalists_.size() * calls);
    const int settle = std::clamp(int(kSettleUs / std::max(best_predicted_us_, 1e-3)), 0, kMostSettleCalls);
    for (int i = 0; i < settle; ++i) finalists_.front()->run(input, output, Deadline::after(comm_.timeout_s()));
    for (int round = 0; round < rounds; ++round)
      for (size_t f = 0; f < finalists_.size(); ++f) {
        for (int i = 0; i < untimed; ++i) finalists_[f]->run(input, output, Deadline::after(comm_.timeout_s()));
        // Without the barrier a rank whose part of the untimed call ended early would time its
        // wait for the others too: between hosts, bytes still queued in the network can keep a
        // peer in that call for many milliseconds.
        if (long_calls) comm_.barrier();
        for (int i = 0; i < per_round; ++i) {
          const auto start = Clock::now();
          finalists_[f]->run(input, output, Deadline::after(comm_.timeout_s()));
          times[f * calls + size_t(round * per_round + i)] =
              std::chrono::duration<double, std::micro>(Clock::now() - start).count();
        }
      }
    std::vector<double> slowest(times.size(), 0);
    for (const std::string& packed : comm_.allgather(std::string(reinterpret_cast<const char*>(times.data()),
                                                                 times.size() * sizeof(double)))) {
      std::vector<double> theirs(times.size());
      std::memcpy(theirs.data(), packed.data(), std::min(packed.size(), theirs.size() * sizeof(double)));
      for (size_t i = 0; i < slowest.size(); ++i) slowest[i] = std::max(slowest[i], theirs[i]);
    }

    choice_.by = "measured";
    double fastest = std::numeric_limits<double>::infinity();
    for (size_t f = 0; f < finalists_.size(); ++f) {
      std::vector<double> mine(slowest.begin() + long(f * calls), slowest.begin() + long((f + 1) * calls));
      std::nth_element(mine.begin(), mine.begin() + long(calls / 2), mine.end());
      const double median = mine[calls / 2];
      choice_.probe_us.emplace_back(finalists_[f]->name(), median);
      if (median < fastest) fastest = median, chosen_ = finalists_[f];
    }
    choice_.algorithm = chosen_->name();
  }

  Comm& comm_;
  const CostProfile& profile_;
  std::vector<std::unique_ptr<ScheduledImplementation>> candidates_;
  ScheduledImplementation* chosen_ = nullptr;
  AutoChoice choice_;
  // Set by prepare() when the model leaves several finalists; the next run() probes them.
  std::vector<ScheduledImplementation*> finalists_;
  CollectiveArgs args_;
  double best_predicted_us_ = 0;
  ProbeBuffer inplace_buffer_;
};

}  // namespace

std::unique_ptr<Implementation> make_auto_implementation(Collective collective, Comm& comm,
                                                         const CostProfile& profile) {
  return std::make_unique<AutoImplementation>(collective, comm, profile);
}

}  // namespace cclab
