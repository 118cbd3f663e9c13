#include "modes/mode.h"

#include "cclab/comm.h"

namespace cclab::train {

std::unique_ptr<ParallelMode> make_mode(Comm* comm, const TrainOptions& options, const ModelPlan& plan,
                                        Backend& backend) {
  // One rank is single-process training whatever the mode (the baseline of every mode).
  if (options.mode == "data" || !comm || comm->size() == 1) return make_data_parallel(comm, options, plan, backend);
  if (options.mode == "ps") return make_parameter_server(*comm, options, plan, backend);
  if (options.mode == "tensor") return make_tensor_parallel(*comm, options, plan, backend);
  if (options.mode == "pipeline" || options.grid.pp > 1) return make_pipeline_parallel(*comm, options, plan, backend);
  return make_hybrid_parallel(*comm, options, plan, backend);  // data-parallel conv + tensor-parallel fc
}

}  // namespace cclab::train
