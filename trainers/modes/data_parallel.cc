// Data parallel (DDP), and the single-process run as its one-rank case (DESIGN 3.6): every rank
// holds the whole model and trains on its Shard of every global batch; the loss is normalised by
// the GLOBAL batch, so the sum of the ranks' gradients is the single-process gradient exactly.
#include <chrono>
#include <cmath>

#include "cclab/comm.h"
#include "cclab/error.h"
#include "model/loss.h"
#include "model/optimizer.h"
#include "modes/gradient_buckets.h"
#include "modes/mode.h"
#include "modes/process_group.h"

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
      group_ = std::make_unique<ProcessGroup>(*comm, every_rank(*comm), 1);
      buckets_ = std::make_unique<GradientBuckets>(*group_, model_.parameters().gradients(),
                                                   model_.parameters().backward_order(), options.bucket_bytes);
      backward_options_.on_gradients_ready = [this](const ParameterRange& range) { buckets_->ready(range); };
    }
  }

  Shard shard() const override { return {size_t(rank_), size_t(ranks_)}; }

  std::string describe() const override {
    if (!buckets_) return "";
    return "# data-parallel over " + std::to_string(ranks_) + " ranks: whole model on each, " +
           std::to_string(buckets_->size()) + " gradient buckets allreduced (ring) during backward\n";
  }

  StepResult train_step(const StepBatch& batch) override {
    StepResult result;
    const auto start = Clock::now();
    if (batch.local_size > 0) {
      std::copy(batch.input, batch.input + batch.local_size * model_.input_shape().elements(), activations_.input());
      model_.forward(activations_, batch.local_size, true);
      const LossResult loss = softmax_cross_entropy(activations_.output(), batch.labels, batch.local_size, classes_,
                                                    activations_.output_gradient(), double(batch.global_size));
      result.loss_sum = loss.loss_sum;
      result.correct = loss.correct;
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
    const double hook_s = buckets_ ? buckets_->comm_s() : 0.0;  // the part of backward's time spent in the hook
    const auto backwarded = Clock::now();
    if (buckets_) {
      buckets_->finish();
      predicted_.grad_sync += buckets_->predicted_sent_bytes();
    }
    const auto synced = Clock::now();
    optimizer_.step(model_.parameters());
    result.forward_s = seconds_between(start, forwarded);
    result.backward_s = seconds_between(forwarded, backwarded) - hook_s;
    result.comm_s = buckets_ ? buckets_->comm_s() : 0.0;
    result.update_s = seconds_between(synced, Clock::now());
    return result;
  }

  StepResult evaluate(const StepBatch& batch) override {
    StepResult result;
    if (batch.local_size == 0) return result;
    std::copy(batch.input, batch.input + batch.local_size * model_.input_shape().elements(), activations_.input());
    model_.forward(activations_, batch.local_size, false);
    const LossResult loss =
        softmax_cross_entropy(activations_.output(), batch.labels, batch.local_size, classes_, nullptr, 1.0);
    result.loss_sum = loss.loss_sum;
    result.correct = loss.correct;
    return result;
  }

  PhaseBytes sent_bytes() const override { return {0, 0, group_ ? double(group_->bytes_sent()) : 0.0}; }
  PhaseBytes predicted_sent_bytes() const override { return predicted_; }
  double received_bytes() const override { return group_ ? double(group_->bytes_received()) : 0.0; }

  std::span<float> parameters() override { return model_.parameters().values(); }
  std::span<float> velocity() override { return optimizer_.velocity(); }
  bool replicated() const override { return true; }

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

 private:
  int rank_, ranks_;
  Model model_;
  SgdMomentum optimizer_;
  Activations activations_;
  size_t classes_;
  std::unique_ptr<ProcessGroup> group_;
  std::unique_ptr<GradientBuckets> buckets_;
  BackwardOptions backward_options_;
  PhaseBytes predicted_;
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
