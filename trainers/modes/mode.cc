#include "modes/mode.h"

#include <algorithm>

#include "cclab/comm.h"
#include "model/loss.h"

namespace cclab::train {

void forward_with_loss(Model& model, Activations& activations, const StepBatch& batch, size_t classes,
                       StepResult& result) {
  std::copy(batch.input, batch.input + batch.local_size * model.input_shape().elements(), activations.input());
  model.forward(activations, batch.local_size, true);
  const LossResult loss = softmax_cross_entropy(activations.output(), batch.labels, batch.local_size, classes,
                                                activations.output_gradient(), double(batch.global_size));
  result.loss_sum = loss.loss_sum;
  result.correct = loss.correct;
}

StepResult evaluate_whole_model(Model& model, Activations& activations, const StepBatch& batch, size_t classes) {
  StepResult result;
  if (batch.local_size == 0) return result;
  std::copy(batch.input, batch.input + batch.local_size * model.input_shape().elements(), activations.input());
  model.forward(activations, batch.local_size, false);
  const LossResult loss =
      softmax_cross_entropy(activations.output(), batch.labels, batch.local_size, classes, nullptr, 1.0);
  result.loss_sum = loss.loss_sum;
  result.correct = loss.correct;
  return result;
}

std::unique_ptr<ParallelMode> make_mode(Comm* comm, const TrainOptions& options, const ModelPlan& plan,
                                        Backend& backend) {
  // One rank is single-process training whatever the mode (the baseline of every mode).
  if (options.mode == "data" || !comm || comm->size() == 1) return make_data_parallel(comm, options, plan, backend);
  if (options.mode == "ps") return make_parameter_server(*comm, options, plan, backend);
  if (options.mode == "fedavg") return make_federated_averaging(*comm, options, plan, backend);
  if (options.mode == "tensor") return make_tensor_parallel(*comm, options, plan, backend);
  if (options.mode == "pipeline" || options.grid.pp > 1) return make_pipeline_parallel(*comm, options, plan, backend);
  return make_hybrid_parallel(*comm, options, plan, backend);  // data-parallel conv + tensor-parallel fc
}

}  // namespace cclab::train
