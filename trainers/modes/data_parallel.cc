// Data parallel (DDP), and the single-process run as its one-rank case (DESIGN 3.6): every rank
// holds the whole model and trains on its Shard of every global batch; the loss is normalised by
// the GLOBAL batch, so the sum of the ranks' gradients is the single-process gradient exactly.
// On several ranks the SGD step is sharded over them and fused into the gradient sum
// (sharded_gradient_buckets.h): each rank updates its block of every bucket and the updated
// parameters are allgathered. One rank runs the plain SgdMomentum::step.
#include <chrono>
#include <cmath>

#include "cclab/comm.h"
#include "cclab/error.h"
#include "cclab/peer_memory.h"
#include "model/loss.h"
#include "model/optimizer.h"
#include "modes/gradient_buckets.h"
#include "modes/mode.h"
#include "modes/process_group.h"
#include "modes/sharded_gradient_buckets.h"

namespace cclab::train {
namespace {

using Clock = std::chrono::steady_clock;

class DataParallel : public ParallelMode {
 public:
  DataParallel(Comm* comm, const TrainOptions& options, const ModelPlan& plan, Backend& backend)
      : rank_(comm ? comm->rank() : 0),
        ranks_(comm ? comm->size() : 1),
        model_(plan.layers, backend, options.seed),
        optimizer_(model_.parameters().size(), float(options.learning_rate), float(options.momentum)),
        activations_(model_, (options.batch + size_t(ranks_) - 1) / size_t(ranks_)),
        classes_(plan.output().elements()) {
    if (comm && ranks_ > 1) {
      // On one node the ranks read each other's gradients and parameters where they lie, instead of
      // copying them through the transport (sharded_gradient_buckets.h): the model's arrays are
      // registered with the Comm's PeerMemory and the groups run the direct collectives.
      // On several nodes most of the exchange would be messages anyway, and the transport path
      // folds the peers' contributions into the update in one pass.
      // A GPU's layers cannot read node-shared host memory: there the model stays in the run's own
      // buffers, which the transport reads.
      const int nodes = comm->topology().nodes();
      const bool host_layers = backend.reads_host_memory();
      PeerMemory* peers = nodes == 1 && host_layers ? comm->peer_memory() : nullptr;
      why_not_shared_ = !host_layers ? "the layers run on a GPU"
                        : nodes == 1 ? comm->why_no_peer_memory()
                                     : "the ranks are on " + std::to_string(nodes) + " nodes";
      if (peers) {
        shared_ = peers->allocate(*comm, ShardedGradientBuckets::shared_bytes_per_rank(model_.parameters()),
                                  &why_not_shared_);
        if (shared_) {
          ShardedGradientBuckets::place_in_shared_memory(model_, shared_.get());
          // Room for the arrays the peers cannot read in place: the small eager copies, and the
          // velocity blocks a checkpoint gathers.
          peers->reserve_staging(*comm, model_.parameters().size() * sizeof(float) + (size_t{64} << 10));
        }
      }
      PeerMemory* reads = shared_ ? peers : nullptr;
      // Two groups over the same ranks: see "Call order" in sharded_gradient_buckets.h.
      group_ = std::make_unique<ProcessGroup>(*comm, every_rank(*comm), 1, reads);
      gather_group_ = std::make_unique<ProcessGroup>(*comm, every_rank(*comm), 2, reads);
      buckets_ = std::make_unique<ShardedGradientBuckets>(*group_, *gather_group_, model_.parameters(), optimizer_,
                                                          model_.parameters().backward_order(), options.bucket_bytes,
                                                          comm->transport().yield_when_idle(), shared_ != nullptr);
      backward_options_.on_gradients_ready = [this](const ParameterRange& range) { buckets_->ready(range); };
    }
  }

  Shard shard() const override { return {size_t(rank_), size_t(ranks_)}; }

  std::string describe() const override {
    if (!buckets_) return "";
    const std::string exchange =
        shared_ ? "through node-shared memory (the direct reduce-scatter and allgather read the peers' gradients and "
                  "updated blocks where they lie)"
                : "through the transport (parameters allgathered by a ring; node-shared memory not used: " +
                      why_not_shared_ + ")";
    return "# data-parallel over " + std::to_string(ranks_) + " ranks: whole model on each, " +
           std::to_string(buckets_->size()) +
           " gradient buckets reduce-scattered during backward, each rank summing and updating its block (SGD "
           "sharded over the ranks), " +
           exchange + "\n";
  }

  StepResult train_step(const StepBatch& batch) override {
    StepResult result;
    const auto start = Clock::now();
    if (batch.local_size > 0) {
      forward_with_loss(model_, activations_, batch, classes_, result);
    }
    const auto forwarded = Clock::now();
    if (buckets_) buckets_->begin_step();
    if (batch.local_size > 0) {
      model_.backward(activations_, batch.local_size, backward_options_);
    } else {  // an empty shard (the last, partial batch of an epoch): contributes zero gradients
      model_.parameters().zero_gradients();
      if (buckets_)
        for (const ParameterRange& range : model_.parameters().backward_order()) buckets_->ready(range);
    }
    // The part of backward's time spent in the hook (communication and the updates it started).
    const double hook_s = buckets_ ? buckets_->comm_s() + buckets_->update_s() : 0.0;
    const auto backwarded = Clock::now();
    if (buckets_) {
      buckets_->finish();
      predicted_.grad_sync += buckets_->predicted_sent_bytes();
      textbook_.grad_sync += buckets_->textbook_sent_bytes();
    }
    const auto synced = Clock::now();
    if (!buckets_) optimizer_.step(model_.parameters());
    result.forward_s = seconds_between(start, forwarded);
    result.backward_s = seconds_between(forwarded, backwarded) - hook_s;
    result.comm_s = buckets_ ? buckets_->comm_s() : 0.0;
    result.update_s = buckets_ ? buckets_->update_s() : seconds_between(synced, Clock::now());
    return result;
  }

  StepResult evaluate(const StepBatch& batch) override {
    return evaluate_whole_model(model_, activations_, batch, classes_);
  }

  ModeTraffic traffic() const override {
    return group_ ? traffic_of({}, {}, {group_.get(), gather_group_.get()}) : ModeTraffic{};
  }
  PhaseCounts predicted_sent_bytes() const override { return predicted_; }
  PhaseCounts textbook_sent_bytes() const override { return textbook_; }

  std::span<float> parameters() override { return model_.parameters().values(); }
  std::span<float> velocity() override { return optimizer_.velocity(); }
  bool replicated() const override { return true; }
  // Each rank's velocity is valid for its blocks only: complete it before rank 0 writes it (no
  // step's traffic).
  void prepare_checkpoint() override {
    if (!buckets_) return;
    ProcessGroup::Uncounted reduce(*group_), gather(*gather_group_);
    buckets_->gather_velocity();
  }

  std::pair<double, double> parameter_sums() const override {
    if (rank_ != 0) return {0, 0};  // every rank holds the same values: count them once
    double sum = 0, abs_sum = 0;
    for (float value : model_.parameters().values()) {
      sum += value;
      abs_sum += std::fabs(value);
    }
    return {sum, abs_sum};
  }

  Model& local_model() override { return model_; }
  size_t buckets() const override { return buckets_ ? buckets_->size() : 0; }
  std::string grad_sync_path() const override {
    return !buckets_ ? "" : shared_ ? "node_shared_memory" : "transport";
  }
  size_t registered_bytes() const override {
    return shared_ ? ShardedGradientBuckets::shared_bytes_per_rank(model_.parameters()) : 0;
  }

 private:
  int rank_, ranks_;
  // Declared before the model, whose parameters it may hold: unmapped after the model is gone.
  std::shared_ptr<std::byte> shared_;  // this rank's registered parameters and gradients
  std::string why_not_shared_;
  Model model_;
  SgdMomentum optimizer_;
  Activations activations_;
  size_t classes_;
  std::unique_ptr<ProcessGroup> group_;
  std::unique_ptr<ProcessGroup> gather_group_;
  std::unique_ptr<ShardedGradientBuckets> buckets_;
  BackwardOptions backward_options_;
  PhaseCounts predicted_, textbook_;
};

}  // namespace

std::unique_ptr<ParallelMode> make_data_parallel(Comm* comm, const TrainOptions& options, const ModelPlan& plan,
                                                 Backend& backend) {
  const int ranks = comm ? comm->size() : 1;
  if (options.grid.dp != ranks || options.grid.tp != 1 || options.grid.pp != 1)
    throw UsageError("data mode needs a grid of dp = " + std::to_string(ranks) + " ranks");
  return std::make_unique<DataParallel>(comm, options, plan, backend);
}

}  // namespace cclab::train
