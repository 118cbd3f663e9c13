#include "cclab/error.h"
#include "cclab/implementation.h"

namespace cclab {

ScheduledImplementation::ScheduledImplementation(const Algorithm& algorithm, Comm& comm, const CostProfile& profile)
    : algorithm_(algorithm), comm_(comm), profile_(profile), executor_(comm.transport(), comm.peer_memory()) {}

Schedule ScheduledImplementation::schedule_for(int rank, const CollectiveArgs& args) const {
  Schedule schedule = algorithm_.build(comm_.topology(), rank, args);
  return comm_.peer_memory() ? reads_within_nodes(schedule, comm_.topology(), rank) : through_transport(schedule);
}

void ScheduledImplementation::prepare(const CollectiveArgs& args) {
  args_ = args;
  Schedule schedule = schedule_for(comm_.rank(), args);
  if (PeerMemory* peers = comm_.peer_memory(); peers && algorithm_.reads_peers) {
    // Room to stage what this rank exposes in one call, for arrays the peers cannot address.
    size_t exposed = 0;
    for (const Step& step : schedule.steps)
      if (step.kind == StepKind::expose) exposed += (step.source.count * dtype_size(args.dtype) + 63) / 64 * 64;
    peers->reserve_staging(comm_, exposed);
  }
  schedule_ = std::make_unique<CompiledSchedule>(std::move(schedule));
  // Once the node's ranks' arrays leave the caches, as the profile's measured curve for copies and
  // reductions says, a final copy's lines would be gone before anyone reads them: they stream to
  // memory instead.
  const BufferCounts counts = buffer_counts(args.collective, args.count, comm_.size());
  const size_t node_footprint = (counts.input + counts.output + schedule_->schedule().scratch_count) *
                                dtype_size(args.dtype) * size_t(comm_.topology().ranks_on_node_of(comm_.rank()));
  schedule_->stream_final_copies(!args.inplace && profile_.kernel_streaming_curve.fraction(node_footprint) > 0);
  predicted_ = predict_traffic(algorithm_, comm_.topology(), args);
}

void ScheduledImplementation::run(const void* input, void* output, Deadline deadline) {
  executor_.run(*schedule_, {input, output}, args_.dtype, args_.op, comm_.next_sequence(), deadline);
}

size_t ScheduledImplementation::scratch_bytes(const CollectiveArgs& args) const {
  return schedule_for(comm_.rank(), args).scratch_count * dtype_size(args.dtype);
}

std::optional<double> ScheduledImplementation::predicted_time_us(const CostProfile& profile) const {
  std::vector<Schedule> schedules;
  for (int r = 0; r < comm_.size(); ++r) schedules.push_back(schedule_for(r, args_));
  return cclab::predict_time_us(comm_.topology(), args_, schedules, profile);
}

std::unique_ptr<Implementation> make_implementation(Collective collective, const std::string& name, Comm& comm,
                                                   const CostProfile& profile) {
  if (name == "auto") return make_auto_implementation(collective, comm, profile);
  if (const Algorithm* algorithm = find_algorithm(collective, name))
    return std::make_unique<ScheduledImplementation>(*algorithm, comm, profile);
  if (auto vendor = make_vendor_implementation(collective, name, comm)) return vendor;
  std::string known;
  for (const Algorithm& algorithm : algorithm_registry())
    if (algorithm.collective == collective) known += (known.empty() ? "" : ", ") + algorithm.name;
  for (const std::string& vendor : vendor_implementation_names(collective)) known += ", " + vendor;
  throw UsageError("unknown implementation '" + name + "' for " + std::string(collective_name(collective)) +
                   " (known: " + known + ")");
}

}  // namespace cclab
