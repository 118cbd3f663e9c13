// `--impl auto`: for each message size, run the hand-written algorithm the cost model predicts to
// be fastest for this rank count and topology (DESIGN 3.3). Every rank predicts from the same
// profile and the same schedules, so every rank picks the same algorithm without talking.
#include <limits>

#include "cclab/error.h"
#include "cclab/implementation.h"

namespace cclab {
namespace {

class AutoImplementation : public Implementation {
 public:
  AutoImplementation(Collective collective, Comm& comm, const CostProfile& profile) : profile_(profile) {
    for (const Algorithm& algorithm : algorithm_registry())
      if (algorithm.collective == collective)
        candidates_.push_back(std::make_unique<ScheduledImplementation>(algorithm, comm));
    if (candidates_.empty())
      throw UsageError("auto: no hand-written algorithm for " + std::string(collective_name(collective)));
  }
  std::string name() const override { return "auto"; }
  std::string transport() const override { return candidates_.front()->transport(); }
  void prepare(const CollectiveArgs& args) override {
    double best = std::numeric_limits<double>::infinity();
    for (auto& candidate : candidates_) {
      candidate->prepare(args);
      const double predicted = *candidate->predicted_time_us(profile_);
      if (predicted < best) best = predicted, chosen_ = candidate.get();
    }
  }
  void run(const void* input, void* output, Deadline deadline) override { chosen_->run(input, output, deadline); }
  size_t scratch_bytes(const CollectiveArgs& args) const override {
    size_t most = 0;
    for (const auto& candidate : candidates_) most = std::max(most, candidate->scratch_bytes(args));
    return most;
  }
  std::optional<PredictedTraffic> predicted_traffic() const override { return chosen_->predicted_traffic(); }
  bool counted_by_transport() const override { return true; }
  std::optional<double> predicted_time_us(const CostProfile& profile) const override {
    return chosen_->predicted_time_us(profile);
  }
  std::string selected() const override { return chosen_->name(); }

 private:
  const CostProfile& profile_;
  std::vector<std::unique_ptr<ScheduledImplementation>> candidates_;
  ScheduledImplementation* chosen_ = nullptr;
};

}  // namespace

std::unique_ptr<Implementation> make_auto_implementation(Collective collective, Comm& comm,
                                                         const CostProfile& profile) {
  return std::make_unique<AutoImplementation>(collective, comm, profile);
}

}  // namespace cclab
