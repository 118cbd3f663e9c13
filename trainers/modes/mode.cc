#include "modes/mode.h"

#include "cclab/comm.h"
#include "cclab/error.h"

namespace cclab::train {

// While the tensor, pipeline and hybrid modes are being written their factories may be absent
// from a build: weak references are null then, and the mode is refused with one clear line.
[[gnu::weak]] std::unique_ptr<ParallelMode> make_tensor_parallel(Comm&, const TrainOptions&, const ModelPlan&,
                                                                 Backend&);
[[gnu::weak]] std::unique_ptr<ParallelMode> make_pipeline_parallel(Comm&, const TrainOptions&, const ModelPlan&,
                                                                   Backend&);
[[gnu::weak]] std::unique_ptr<ParallelMode> make_hybrid_parallel(Comm&, const TrainOptions&, const ModelPlan&,
                                                                 Backend&);

std::unique_ptr<ParallelMode> make_mode(Comm* comm, const TrainOptions& options, const ModelPlan& plan,
                                        Backend& backend) {
  using Factory = std::unique_ptr<ParallelMode> (*)(Comm&, const TrainOptions&, const ModelPlan&, Backend&);
  Factory factory = nullptr;
  if (options.mode == "data" || !comm || comm->size() == 1) return make_data_parallel(comm, options, plan, backend);
  if (options.mode == "tensor") factory = &make_tensor_parallel;
  if (options.mode == "pipeline" || (options.mode == "hybrid" && options.grid.pp > 1))
    factory = &make_pipeline_parallel;
  else if (options.mode == "hybrid")
    factory = &make_hybrid_parallel;
  if (!factory) throw UsageError("not implemented yet: --mode " + options.mode);
  return factory(*comm, options, plan, backend);
}

}  // namespace cclab::train
