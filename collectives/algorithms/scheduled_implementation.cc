#include "cclab/error.h"
#include "cclab/implementation.h"

namespace cclab {

ScheduledImplementation::ScheduledImplementation(const Algorithm& algorithm, Comm& comm)
    : algorithm_(algorithm), comm_(comm), executor_(comm.transport()) {}

void ScheduledImplementation::prepare(const CollectiveArgs& args) {
  args_ = args;
  schedule_ = std::make_unique<CompiledSchedule>(algorithm_.build(comm_.topology(), comm_.rank(), args));
  predicted_ = predict_traffic(algorithm_, comm_.topology(), args);
}

void ScheduledImplementation::run(const void* input, void* output, Deadline deadline) {
  executor_.run(*schedule_, {input, output}, args_.dtype, args_.op, comm_.next_sequence(), deadline);
}

size_t ScheduledImplementation::scratch_bytes(const CollectiveArgs& args) const {
  return algorithm_.build(comm_.topology(), comm_.rank(), args).scratch_count * dtype_size(args.dtype);
}

std::optional<double> ScheduledImplementation::predicted_time_us(const CostProfile& profile) const {
  return cclab::predict_time_us(algorithm_, comm_.topology(), args_, profile);
}

std::unique_ptr<Implementation> make_implementation(Collective collective, const std::string& name, Comm& comm,
                                                   const CostProfile& profile) {
  if (name == "auto") return make_auto_implementation(collective, comm, profile);
  if (const Algorithm* algorithm = find_algorithm(collective, name))
    return std::make_unique<ScheduledImplementation>(*algorithm, comm);
  if (auto vendor = make_vendor_implementation(collective, name, comm)) return vendor;
  std::string known;
  for (const Algorithm& algorithm : algorithm_registry())
    if (algorithm.collective == collective) known += (known.empty() ? "" : ", ") + algorithm.name;
  for (const std::string& vendor : vendor_implementation_names(collective)) known += ", " + vendor;
  throw UsageError("unknown implementation '" + name + "' for " + std::string(collective_name(collective)) +
                   " (known: " + known + ")");
}

}  // namespace cclab
