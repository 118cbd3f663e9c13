// Hybrid parallel ("one weird trick", hybrid_parallel.h): data-parallel convolution prefix on the
// shards, tensor-parallel fc suffix on the whole batch, over the same ranks. The boundary is where
// the two meet: forward gathers every shard's features (and labels) so each rank holds the whole
// batch; backward hands every rank its own shard's gradient back, summed over the fc slices.
#include "modes/hybrid_parallel.h"

#include <algorithm>
#include <chrono>

#include "cclab/comm.h"
#include "cclab/error.h"
#include "model/loss.h"
#include "model/optimizer.h"
#include "modes/gradient_buckets.h"

namespace cclab::train {
namespace {

using Clock = std::chrono::steady_clock;

size_t first_fully_connected(const ModelPlan& plan) {
  for (size_t i = 0; i < plan.layers.size(); ++i)
    if (plan.layers[i].kind == LayerKind::fully_connected) return i;
  return plan.layers.size();
}

// The parameter runs of the layers before `boundary` (the data-parallel prefix), in backward order.
std::vector<ParameterRange> prefix_ranges(const ParameterStore& store, size_t boundary) {
  std::vector<ParameterRange> ranges;
  for (const ParameterRange& range : store.backward_order())
    if (range.layer < boundary) ranges.push_back(range);
  return ranges;
}

class HybridParallel : public ParallelMode {
 public:
  HybridParallel(Comm& comm, const TrainOptions& options, const ModelPlan& plan, Backend& backend)
      : ranks_(size_t(comm.size())),
        boundary_(first_fully_connected(plan)),
        split_(split_tensor_parallel(plan.layers, boundary_, size_t(comm.rank()), ranks_)),
        model_(split_.layers, backend, options.seed),
        optimizer_(model_.parameters().size(), float(options.learning_rate), float(options.momentum)),
        shard_activations_(model_, largest_shard(options.batch), 0, boundary_),
        batch_activations_(model_, options.batch, boundary_, model_.size()),
        forward_group_(comm, every_rank(comm), kForwardGroup, &PhaseCounts::forward),
        backward_group_(comm, every_rank(comm), kBackwardGroup, &PhaseCounts::backward),
        sync_group_(comm, every_rank(comm), kGradSyncGroup),
        gradient_sync_(sync_group_, model_.parameters().gradients(), prefix_ranges(model_.parameters(), boundary_),
                       options.bucket_bytes),
        run_(model_, split_, forward_group_, backward_group_, options.batch),
        features_(split_.layers[boundary_].input.elements()),
        classes_(plan.output().elements()),
        labels_(options.batch),
        label_block_(largest_shard(options.batch)),
        label_blocks_(ranks_ * label_block_.size()) {
    // Shards of unequal size travel padded to the largest: staging for the gathered (forward) and
    // the to-be-scattered (backward) boundary. Any batch may be uneven (an epoch's last one, or
    // evaluation's), so it is there whatever the training batch.
    padded_.resize(ranks_ * largest_shard(options.batch) * features_);
    prefix_backward_.on_gradients_ready = [this](const ParameterRange& range) { gradient_sync_.ready(range); };
  }

  Shard shard() const override { return {size_t(split_.part), ranks_}; }

  std::string describe() const override {
    std::string prefix;
    for (size_t i = 0; i < boundary_; ++i) prefix += (i ? " | " : "") + split_.layers[i].name();
    return "# hybrid over " + std::to_string(ranks_) + " ranks: data-parallel on shards of the batch (gradients " +
           "allreduced in buckets during backward): " + (prefix.empty() ? "no layers" : prefix) + "\n" +
           "# then, on the whole batch (boundary allgathered, its gradient reduce-scattered), tensor-parallel (rank " +
           std::to_string(split_.part) + "'s slices): " + describe_tensor_split(split_) + "\n";
  }

  StepResult train_step(const StepBatch& batch) override {
    StepResult result;
    CommTally tally;
    const auto start = Clock::now();
    run_prefix_forward(batch, true);
    gather_boundary(batch, tally);
    const float* logits = run_.forward(batch_activations_, batch.global_size, true, tally);
    const LossResult loss = softmax_cross_entropy(logits, labels_.data(), batch.global_size, classes_,
                                                  run_.output_gradient(batch_activations_), double(batch.global_size));
    const double forward_comm_s = tally.comm_s;
    const auto forwarded = Clock::now();

    gradient_sync_.begin_step();
    run_.backward(batch_activations_, batch.global_size, tally);
    if (run_.computes_input_gradient()) {  // the prefix has parameters
      scatter_boundary_gradient(batch, tally);
      if (batch.local_size > 0) {
        model_.backward(shard_activations_, batch.local_size, prefix_backward_, 0, boundary_);
      } else {  // an empty shard (the last, partial batch of an epoch) contributes zero gradients
        for (const ParameterRange& range : model_.parameters().backward_order()) {
          if (range.layer >= boundary_) continue;
          std::fill_n(model_.parameters().gradients().begin() + std::ptrdiff_t(range.offset), range.count, 0.0f);
          gradient_sync_.ready(range);
        }
      }
    }
    const double hook_s = gradient_sync_.comm_s();  // the part of backward's time spent in the hook
    const auto backwarded = Clock::now();
    gradient_sync_.finish();
    const auto synced = Clock::now();
    optimizer_.step(model_.parameters());

    if (split_.part == 0) {  // the logits, hence the loss, are the same on every rank: report once
      result.loss_sum = loss.loss_sum;
      result.correct = loss.correct;
    }
    result.forward_s = seconds_between(start, forwarded) - forward_comm_s;
    result.backward_s = seconds_between(forwarded, backwarded) - (tally.comm_s - forward_comm_s) - hook_s;
    result.comm_s = tally.comm_s + gradient_sync_.comm_s();
    result.update_s = seconds_between(synced, Clock::now());
    predicted_.forward += tally.predicted.forward;
    predicted_.backward += tally.predicted.backward;
    predicted_.grad_sync += gradient_sync_.predicted_sent_bytes();
    textbook_.forward += tally.textbook.forward;
    textbook_.backward += tally.textbook.backward;
    textbook_.grad_sync += gradient_sync_.textbook_sent_bytes();
    return result;
  }

  StepResult evaluate(const StepBatch& batch) override {
    StepResult result;
    CommTally tally;
    tally.training = false;  // evaluation: its traffic is not counted
    const auto start = Clock::now();
    run_prefix_forward(batch, false);
    gather_boundary(batch, tally);
    const float* logits = run_.forward(batch_activations_, batch.global_size, false, tally);
    if (split_.part == 0) {
      const LossResult loss = softmax_cross_entropy(logits, labels_.data(), batch.global_size, classes_, nullptr, 1.0);
      result.loss_sum = loss.loss_sum;
      result.correct = loss.correct;
    }
    result.comm_s = tally.comm_s;
    result.forward_s = seconds_between(start, Clock::now()) - tally.comm_s;
    return result;
  }

  ModeTraffic traffic() const override {
    return traffic_of({&forward_group_.group()}, {&backward_group_.group()}, {&sync_group_});
  }
  PhaseCounts predicted_sent_bytes() const override { return predicted_; }
  PhaseCounts textbook_sent_bytes() const override { return textbook_; }

  std::span<float> parameters() override { return model_.parameters().values(); }
  std::span<float> velocity() override { return optimizer_.velocity(); }
  bool replicated() const override { return false; }
  // The prefix is replicated (split_ marks it so): counted on rank 0 only.
  std::pair<double, double> parameter_sums() const override { return tensor_parameter_sums(model_, split_); }
  Model& local_model() override { return model_; }

 private:
  size_t largest_shard(size_t global) const { return (global + ranks_ - 1) / ranks_; }
  std::pair<size_t, size_t> rows_of(size_t rank, size_t global) const {
    return BatchLoader::shard_range(global, Shard{rank, ranks_});
  }

  void run_prefix_forward(const StepBatch& batch, bool training) {
    if (batch.local_size == 0) return;
    std::copy_n(batch.input, batch.local_size * model_.input_shape().elements(), shard_activations_.input());
    model_.forward(shard_activations_, batch.local_size, training, 0, boundary_);
  }

  // Every rank's shard of the boundary activations and labels, in batch order, into
  // batch_activations_.activation(boundary_) and labels_. Blocks are padded to the largest shard
  // (what lies past a shard's end in its buffer travels along and is dropped).
  void gather_boundary(const StepBatch& batch, CommTally& tally) {
    const size_t global = batch.global_size, block = largest_shard(global);
    const bool even = global % ranks_ == 0;
    float* whole = batch_activations_.activation(boundary_);
    forward_group_.allgather(shard_activations_.activation(boundary_), even ? whole : padded_.data(), block * features_,
                             tally);
    // Labels are small integers, exact as floats.
    std::transform(batch.labels, batch.labels + batch.local_size, label_block_.begin(),
                   [](int32_t label) { return float(label); });
    forward_group_.allgather(label_block_.data(), label_blocks_.data(), block, tally);
    for (size_t rank = 0; rank < ranks_; ++rank) {
      const auto [begin, end] = rows_of(rank, global);
      if (!even)
        std::copy_n(padded_.data() + rank * block * features_, (end - begin) * features_, whole + begin * features_);
      std::transform(label_blocks_.begin() + std::ptrdiff_t(rank * block),
                     label_blocks_.begin() + std::ptrdiff_t(rank * block + end - begin),
                     labels_.begin() + std::ptrdiff_t(begin), [](float label) { return int32_t(label); });
    }
  }

  // This rank's rows of the gradient w.r.t. the boundary, into shard_activations_.gradient(boundary_).
  void scatter_boundary_gradient(const StepBatch& batch, CommTally& tally) {
    const size_t global = batch.global_size, block = largest_shard(global);
    const float* whole = batch_activations_.gradient(boundary_);
    float* mine = shard_activations_.gradient(boundary_);
    if (!run_.input_gradient_is_partial()) {  // a replicated first fc: every rank holds the whole gradient
      const size_t begin = rows_of(size_t(split_.part), global).first;
      std::copy_n(whole + begin * features_, batch.local_size * features_, mine);
      return;
    }
    // Partial sums over the fc slices (Megatron's f): the reduce-scatter sums them and hands each
    // rank its own rows in one collective.
    if (global % ranks_ == 0) {
      backward_group_.reduce_scatter(whole, mine, block * features_, tally);
      return;
    }
    for (size_t rank = 0; rank < ranks_; ++rank) {
      const auto [begin, end] = rows_of(rank, global);
      float* padded_block = padded_.data() + rank * block * features_;
      std::copy_n(whole + begin * features_, (end - begin) * features_, padded_block);
      std::fill(padded_block + (end - begin) * features_, padded_block + block * features_, 0.0f);
    }
    backward_group_.reduce_scatter(padded_.data(), mine, block * features_, tally);
  }

  size_t ranks_;
  size_t boundary_;  // the first fc layer: the tensor-parallel suffix starts here
  TensorSplit split_;
  Model model_;
  SgdMomentum optimizer_;
  // The prefix runs on shards, the suffix on the whole batch: each range is sized for its batch.
  Activations shard_activations_, batch_activations_;
  PhaseGroup forward_group_, backward_group_;
  ProcessGroup sync_group_;
  GradientBuckets gradient_sync_;  // the prefix's gradients, summed over the ranks (DDP buckets)
  TensorParallelRun run_;
  BackwardOptions prefix_backward_;
  size_t features_, classes_;
  std::vector<int32_t> labels_;             // of the whole batch
  FloatBuffer label_block_, label_blocks_;  // this shard's labels; every shard's, padded
  FloatBuffer padded_;                      // the boundary in padded blocks (batches of uneven shards)
  PhaseCounts predicted_, textbook_;
};

}  // namespace

std::unique_ptr<ParallelMode> make_hybrid_parallel(Comm& comm, const TrainOptions& options, const ModelPlan& plan,
                                                   Backend& backend) {
  const Grid& grid = options.grid;
  if (grid.pp != 1 || grid.ranks() != comm.size() || (grid.dp != 1 && grid.tp != 1))
    throw UsageError(
        "hybrid mode runs its convolutions data-parallel and its fc layers tensor-parallel over the same " +
        std::to_string(comm.size()) + " ranks: it needs a grid of " + std::to_string(comm.size()) +
        " ranks along one dimension");
  return std::make_unique<HybridParallel>(comm, options, plan, backend);
}

}  // namespace cclab::train
