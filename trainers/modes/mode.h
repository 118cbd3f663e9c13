// A parallel mode's part of training (DESIGN 3.6). The loop in trainer.cc owns what every mode
// shares: data loading, epochs, the global loss of every step, evaluation batches, checkpoints,
// records and the printed tables. A mode owns the model piece(s) this rank holds, the optimizer,
// the communication between ranks and the accounting of its time and traffic by phase.
//
// Modes (one file each): data_parallel.cc (also the single-process run: data mode on one rank),
// tensor_parallel.cc, pipeline_parallel.cc, hybrid_parallel.cc, parameter_server.cc,
// federated_averaging.cc. make_mode() picks by TrainOptions::mode and grid.
//
// Every mode is an exact decomposition of single-process training: with the same options the loss
// of every step and the final parameters equal the one-rank run's up to float rounding (fedavg only
// with one local step per round, every worker taking part and none dropping out).
#pragma once

#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>

#include "data/loader.h"
#include "model/model.h"
#include "model/spec.h"
#include "trainer.h"

namespace cclab {
class Comm;
}

namespace cclab::train {

/// The samples this rank loaded for one step (its Shard of the global batch).
struct StepBatch {
  float* input = nullptr;  // local_size samples, NHWC, the model's input shape
  const int32_t* labels = nullptr;
  size_t local_size = 0;   // may be 0 (a shard of the last, partial batch)
  size_t global_size = 0;  // samples of the whole global batch: the loss is normalised by it
};

/// What one step (or one evaluation batch) did on this rank.
struct StepResult {
  /// Summed softmax cross-entropy and correct predictions over the samples whose loss THIS rank
  /// computes. Summed over all ranks they must give the global batch's sums exactly once (a rank
  /// that computes no loss, or a replica of one that does, returns 0).
  double loss_sum = 0;
  size_t correct = 0;
  /// Seconds, by phase. forward/backward/update: computation only. comm: time this rank's thread
  /// spends inside communication calls (posting, progressing, transferring, reducing received
  /// data). Time blocked waiting for a peer that is behind belongs to neither: the loop counts it,
  /// with everything else not accounted here, as idle.
  double forward_s = 0, backward_s = 0, update_s = 0, comm_s = 0;
  /// Samples the step's loss sums cover when that is not the whole global batch (federated
  /// averaging with label-skewed shards leaves the classes of the workers outside a round out): the
  /// step's mean loss divides by it. The same on every rank.
  std::optional<size_t> loss_samples;
};

/// A count (bytes or messages) by phase (DESIGN 3.5 phases; push and pull: the parameter server's),
/// summed over the steps so far.
struct PhaseCounts {
  double forward = 0, backward = 0, grad_sync = 0, push = 0, pull = 0;
  static constexpr size_t kPhases = 5;
  /// Phase i in the order above.
  double at(size_t i) const {
    const double values[kPhases] = {forward, backward, grad_sync, push, pull};
    return values[i];
  }
  double total() const { return forward + backward + grad_sync + push + pull; }
};

/// What this rank sent by phase and received in all, during train_step only (evaluation passes and
/// checkpoint gathers are left out: ProcessGroup::Uncounted).
struct ModeTraffic {
  PhaseCounts bytes_sent, messages_sent;
  double bytes_received = 0, messages_received = 0;
};

class ProcessGroup;
/// The traffic of the groups that carry each phase (modes give each phase its own groups).
ModeTraffic traffic_of(std::initializer_list<const ProcessGroup*> forward,
                       std::initializer_list<const ProcessGroup*> backward,
                       std::initializer_list<const ProcessGroup*> grad_sync,
                       std::initializer_list<const ProcessGroup*> push = {},
                       std::initializer_list<const ProcessGroup*> pull = {});

class ParallelMode {
 public:
  virtual ~ParallelMode() = default;

  /// The part of every global batch this rank loads (tensor and pipeline modes load all of it).
  virtual Shard shard() const = 0;
  /// One or more "# ..." lines for the run header: how the model is split over the ranks.
  virtual std::string describe() const = 0;

  /// One training step: forward, loss (normalised by batch.global_size), backward, gradient sync,
  /// SGD update. Collective: every rank calls it for every step.
  virtual StepResult train_step(const StepBatch& batch) = 0;
  /// Inference on one batch of the test set (training = false), cut by the same Shard and never
  /// larger than a training batch; loss_sum and correct as in train_step. Collective.
  virtual StepResult evaluate(const StepBatch& batch) = 0;

  /// Measured traffic so far (sends and receives posted during train_step only), and the bytes
  /// DESIGN 3.7's formulas (or the simulator, which knows the chunk rounding) predict for the same
  /// steps (the batch of each step, the last partial one included).
  virtual ModeTraffic traffic() const = 0;
  virtual PhaseCounts predicted_sent_bytes() const = 0;
  /// The same steps' bytes by DESIGN 3.7's textbook formulas (ring volumes, no chunk rounding).
  virtual PhaseCounts textbook_sent_bytes() const = 0;

  /// Checkpoints: this rank's parameters and SGD velocity, and whether every rank holds the same
  /// (data parallel: rank 0 writes one file, every rank reads it) or its own part (one file each).
  virtual std::span<float> parameters() = 0;
  virtual std::span<float> velocity() = 0;
  virtual bool replicated() const = 0;
  /// How the model is split when that is not a function of the options alone (the pipeline's
  /// measured stage balance: "balance=4,5"); recorded in checkpoints so a resumed run splits the
  /// model the same way (TrainOptions::balance). Empty for the other modes.
  virtual std::string layout() const { return ""; }
  /// After the last step of an epoch, before the collectives that close it: a mode whose ranks may
  /// be steps apart (asynchronous parameter servers) finishes the work still in flight. Collective.
  virtual void finish_steps() {}
  /// Parameter servers: the staleness of the updates this rank applied (nullopt elsewhere).
  virtual std::optional<Staleness> staleness() const { return std::nullopt; }
  /// What the mode adds to the train record and summary, over all ranks (federated averaging: its
  /// rounds). Collective: every rank calls it once, after the last step; rank 0's answer is written.
  virtual ModeRecord mode_record() { return {}; }

  /// Called on every rank before a checkpoint is written: a mode whose ranks hold parts of a
  /// replicated state (e.g. optimizer state sharded over data-parallel ranks) assembles it here.
  /// Collective. Nothing to do for modes whose parameters() and velocity() are always complete.
  virtual void prepare_checkpoint() {}
  /// Called on every rank after parameters() and velocity() were restored from a checkpoint: a mode
  /// whose ranks hold copies of what other ranks saved (parameter-server workers) fetches them here.
  /// Collective.
  virtual void resumed() {}

  /// Sum and sum of absolute values of the WHOLE model's parameters, this rank's share: summed over
  /// ranks they count every parameter of the unsplit model exactly once (a replica adds 0).
  virtual std::pair<double, double> parameter_sums() const = 0;

  /// The model piece this rank runs (for --profile-layers).
  virtual Model& local_model() = 0;
  /// Data parallel: gradient buckets per step (0 elsewhere).
  virtual size_t buckets() const { return 0; }
  /// Data parallel on several ranks: how the gradient sync moves its data, "node_shared_memory" or
  /// "transport" (empty elsewhere).
  virtual std::string grad_sync_path() const { return ""; }
  /// Bytes of this rank's state outside its buffers (buffer.h): memory registered for peers to read.
  virtual size_t registered_bytes() const { return 0; }
};

/// Training forward of a rank that holds the whole model on its (non-empty) shard, with the loss
/// normalised by the global batch and its gradient in place for backward; fills the loss figures.
void forward_with_loss(Model& model, Activations& activations, const StepBatch& batch, size_t classes,
                       StepResult& result);
/// evaluate() of a rank that holds the whole model: inference on its shard of the batch.
StepResult evaluate_whole_model(Model& model, Activations& activations, const StepBatch& batch, size_t classes);

/// The mode of options.mode / options.grid for this rank (mode.cc); comm is null for a one-rank run
/// (data mode). A step gives a Shard{r, R} at most (options.batch + R - 1) / R samples.
std::unique_ptr<ParallelMode> make_mode(Comm* comm, const TrainOptions& options, const ModelPlan& plan,
                                        Backend& backend);

// One per file. Each checks that options.grid fits comm.size() and the model, throwing UsageError.
/// data_parallel.cc: grid dp = ranks (also one rank without a Comm).
std::unique_ptr<ParallelMode> make_data_parallel(Comm* comm, const TrainOptions& options, const ModelPlan& plan,
                                                 Backend& backend);
/// tensor_parallel.cc: grid tp = ranks.
std::unique_ptr<ParallelMode> make_tensor_parallel(Comm& comm, const TrainOptions& options, const ModelPlan& plan,
                                                   Backend& backend);
/// pipeline_parallel.cc: grid pp = stages, dp = replicas of the pipeline (dp x pp = ranks).
std::unique_ptr<ParallelMode> make_pipeline_parallel(Comm& comm, const TrainOptions& options, const ModelPlan& plan,
                                                     Backend& backend);
/// parameter_server.cc: --mode ps, workers and servers (TrainOptions::ps_servers, ps_sync).
std::unique_ptr<ParallelMode> make_parameter_server(Comm& comm, const TrainOptions& options, const ModelPlan& plan,
                                                    Backend& backend);
/// federated_averaging.cc: --mode fedavg, workers and servers as in ps (TrainOptions::ps_servers),
/// rounds of TrainOptions::local_steps local steps.
std::unique_ptr<ParallelMode> make_federated_averaging(Comm& comm, const TrainOptions& options, const ModelPlan& plan,
                                                       Backend& backend);
/// hybrid_parallel.cc: data-parallel convolution layers, tensor-parallel fully connected layers
/// over the same ranks (Krizhevsky's "one weird trick"). (--mode hybrid with pp > 1 is the data x
/// pipeline grid of make_pipeline_parallel.)
std::unique_ptr<ParallelMode> make_hybrid_parallel(Comm& comm, const TrainOptions& options, const ModelPlan& plan,
                                                   Backend& backend);

}  // namespace cclab::train
