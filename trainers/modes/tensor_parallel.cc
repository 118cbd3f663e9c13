// Tensor parallel (DESIGN 3.6, Megatron-LM): every rank holds a slice of the split layers (see
// tensor_split.h for how the model splits) and processes the WHOLE global batch; the collectives
// between the slices make every rank's logits the same bits, so every rank computes the same loss
// gradient and only rank 0 reports the loss. Parameter gradients need no synchronisation: a slice's
// gradients are complete on its rank and a replicated layer's are identical everywhere.
#include "modes/tensor_parallel.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "cclab/comm.h"
#include "cclab/error.h"
#include "model/loss.h"
#include "model/optimizer.h"
#include "modes/gradient_buckets.h"
#include "modes/tensor_split.h"

namespace cclab::train {
namespace {

using Clock = std::chrono::steady_clock;

bool has_parameters(const LayerConfig& layer) {
  return layer.kind == LayerKind::convolution || layer.kind == LayerKind::fully_connected;
}

}  // namespace

TensorSplit split_tensor_parallel(std::vector<LayerConfig> layers, size_t first, size_t part, size_t parts) {
  TensorSplit split;
  split.first = first;
  split.part = part;
  split.parts = parts;
  split.whole_output = layers.back().output();
  split.roles.assign(layers.size(), TensorRole::replicated);
  const size_t end = layers.size();
  for (size_t i = first; i < end; ++i) {
    if (!has_parameters(layers[i]) || layers[i].outputs.count < parts) continue;
    size_t partner = i + 1;
    while (partner < end && !has_parameters(layers[partner])) ++partner;
    layers[i] = column_slice(layers[i], part, parts);
    split.roles[i] = partner < end ? TensorRole::column : TensorRole::gathered_column;
    // Layers without parameters are relu or max pooling: per channel, so they run on the slice.
    for (size_t j = i + 1; j < partner; ++j) {
      layers[j].input.channels = layers[i].outputs.count;
      layers[j].inputs = layers[i].outputs;
      split.roles[j] = TensorRole::on_slice;
    }
    if (partner < end) {
      layers[partner] = row_slice(layers[partner], part, parts);
      split.roles[partner] = TensorRole::row;
    }
    i = partner;
  }
  split.layers = std::move(layers);
  return split;
}

std::string describe_tensor_split(const TensorSplit& split) {
  std::string text;
  for (size_t i = split.first; i < split.layers.size(); ++i) {
    if (!text.empty()) text += " | ";
    text += split.layers[i].name();
    switch (split.roles[i]) {
      case TensorRole::column:
        text += " column";
        break;
      case TensorRole::gathered_column:
        text += " column, allgather";
        break;
      case TensorRole::row:
        text += " row, allreduce";
        break;
      case TensorRole::replicated:
        if (has_parameters(split.layers[i])) text += " replicated";
        break;
      case TensorRole::on_slice:
        break;
    }
  }
  return text;
}

std::pair<double, double> tensor_parameter_sums(const Model& model, const TensorSplit& split) {
  double sum = 0, abs_sum = 0;
  for (size_t i = 0; i < model.size(); ++i) {
    if (split.roles[i] == TensorRole::replicated && split.part != 0) continue;  // part 0 counts replicas once
    const ParameterRange& range = model.parameters().range(i);
    for (float value : model.parameters().values().subspan(range.offset, range.count)) {
      sum += value;
      abs_sum += std::fabs(value);
    }
  }
  return {sum, abs_sum};
}

PhaseGroup::PhaseGroup(Comm& comm, std::vector<int> members, unsigned id, double PhaseCounts::*phase)
    : group_(comm, std::move(members), id), phase_(phase) {}

template <typename Call>
void PhaseGroup::run(Collective collective, size_t count, CommTally& tally, Call&& call) {
  const auto start = Clock::now();
  if (tally.training) {
    call();
    tally.predicted.*phase_ += double(group_.predicted_sent_bytes(collective, count));
    tally.textbook.*phase_ += textbook_sent_bytes(collective, count, group_.size());
  } else {
    ProcessGroup::Uncounted evaluation(group_);
    call();
  }
  tally.comm_s += seconds_between(start, Clock::now());
}

void PhaseGroup::allreduce(float* data, size_t count, CommTally& tally) {
  run(Collective::allreduce, count, tally, [&] { group_.allreduce(data, count); });
}

void PhaseGroup::allgather(const float* block, float* whole, size_t block_count, CommTally& tally) {
  run(Collective::allgather, block_count, tally, [&] { group_.allgather(block, whole, block_count); });
}

void PhaseGroup::reduce_scatter(const float* whole, float* block, size_t block_count, CommTally& tally) {
  run(Collective::reduce_scatter, block_count, tally, [&] { group_.reduce_scatter(whole, block, block_count); });
}

TensorParallelRun::TensorParallelRun(Model& model, const TensorSplit& split, PhaseGroup& forward, PhaseGroup& backward,
                                     size_t max_batch)
    : model_(model), split_(split), forward_(forward), backward_(backward), first_(split.first) {
  const size_t end = model.size();
  for (size_t i = first_; i < end; ++i) {
    if (split.roles[i] == TensorRole::row) row_ends_.push_back(i + 1);
    gathered_ = gathered_ || split.roles[i] == TensorRole::gathered_column;
  }
  if (row_ends_.empty() || row_ends_.back() != end) row_ends_.push_back(end);
  for (size_t i = end; i-- > first_ + 1;) {
    const bool column = split.roles[i] == TensorRole::column || split.roles[i] == TensorRole::gathered_column;
    if (column && input_gradient_needed(i)) backward_starts_.push_back(i);
  }
  backward_starts_.push_back(first_);
  if (gathered_) {
    const ActivationShape slice = model_.output_shape();
    gathered_channels_ = Slice::whole(split.layers[gathered_column_layer()].outputs.total);
    gather_send_.resize(max_batch * slice.height * slice.width * gathered_channels_.piece(0, split.parts).count);
    gather_blocks_.resize(gather_send_.size() * split.parts);
    whole_output_.resize(max_batch * split.whole_output.elements());
    whole_output_gradient_.resize(whole_output_.size());
  }
}

size_t TensorParallelRun::gathered_column_layer() const {
  size_t layer = split_.layers.size();
  while (split_.roles[layer - 1] != TensorRole::gathered_column) --layer;
  return layer - 1;
}

bool TensorParallelRun::input_gradient_needed(size_t layer) const {
  return std::any_of(split_.layers.begin(), split_.layers.begin() + std::ptrdiff_t(layer), has_parameters);
}

bool TensorParallelRun::input_gradient_is_partial() const {
  return split_.roles[first_] == TensorRole::column || split_.roles[first_] == TensorRole::gathered_column;
}

size_t TensorParallelRun::per_sample(size_t boundary) const {
  return boundary == 0 ? model_.input_shape().elements() : model_.layer(boundary - 1).output_shape().elements();
}

const float* TensorParallelRun::forward(Activations& activations, size_t batch, bool training, CommTally& tally) {
  size_t begin = first_;
  for (size_t end : row_ends_) {
    model_.forward(activations, batch, training, begin, end);
    if (split_.roles[end - 1] == TensorRole::row)  // g: the sum of the row slices' partial outputs
      forward_.allreduce(activations.activation(end), batch * per_sample(end), tally);
    begin = end;
  }
  if (!gathered_) return activations.output();
  // Part r's block holds its channel piece [begin_r, begin_r + c_r) of every (sample, pixel) position
  // (c_r channels each, then padding up to the block size shared by all parts: the allgather moves
  // blocks of one size); interleave the pieces into NHWC [batch][H][W][total channels].
  const ActivationShape slice = model_.output_shape();
  const size_t positions = batch * slice.height * slice.width, total = gathered_channels_.total;
  const size_t block = positions * gathered_channels_.piece(0, split_.parts).count;
  std::copy_n(activations.output(), positions * slice.channels, gather_send_.data());
  forward_.allgather(gather_send_.data(), gather_blocks_.data(), block, tally);
  for (size_t part = 0; part < split_.parts; ++part) {
    const Slice piece = gathered_channels_.piece(part, split_.parts);
    const float* from = gather_blocks_.data() + part * block;
    for (size_t p = 0; p < positions; ++p)
      std::copy_n(from + p * piece.count, piece.count, whole_output_.data() + p * total + piece.begin);
  }
  return whole_output_.data();
}

float* TensorParallelRun::output_gradient(Activations& activations) {
  return gathered_ ? whole_output_gradient_.data() : activations.output_gradient();
}

void TensorParallelRun::backward(Activations& activations, size_t batch, CommTally& tally) {
  if (gathered_) {  // this part's channels of the replicated whole gradient
    const ActivationShape slice = model_.output_shape();
    const size_t positions = batch * slice.height * slice.width, total = gathered_channels_.total;
    const Slice piece = gathered_channels_.piece(split_.part, split_.parts);
    float* mine = activations.output_gradient();
    for (size_t p = 0; p < positions; ++p)
      std::copy_n(whole_output_gradient_.data() + p * total + piece.begin, piece.count, mine + p * piece.count);
  }
  size_t end = model_.size();
  for (size_t start : backward_starts_) {
    BackwardOptions options;
    options.input_gradient = input_gradient_needed(start);
    model_.backward(activations, batch, options, start, end);
    if (start != first_)  // f: the sum of the column slices' partial input gradients
      backward_.allreduce(activations.gradient(start), batch * per_sample(start), tally);
    end = start;
  }
}

namespace {

class TensorParallel : public ParallelMode {
 public:
  TensorParallel(Comm& comm, const TrainOptions& options, const ModelPlan& plan, Backend& backend)
      : split_(split_tensor_parallel(plan.layers, 0, size_t(comm.rank()), size_t(comm.size()))),
        model_(split_.layers, backend, options.seed),
        optimizer_(model_.parameters().size(), float(options.learning_rate), float(options.momentum)),
        activations_(model_, options.batch),
        forward_group_(comm, every_rank(comm), kForwardGroup, &PhaseCounts::forward),
        backward_group_(comm, every_rank(comm), kBackwardGroup, &PhaseCounts::backward),
        run_(model_, split_, forward_group_, backward_group_, options.batch),
        classes_(plan.output().elements()) {}

  Shard shard() const override { return {0, 1}; }

  std::string describe() const override {
    return "# tensor-parallel over " + std::to_string(split_.parts) + " ranks (rank " + std::to_string(split_.part) +
           "'s slices): " + describe_tensor_split(split_) + "\n";
  }

  StepResult train_step(const StepBatch& batch) override {
    StepResult result;
    CommTally tally;
    const auto start = Clock::now();
    const size_t samples = batch.local_size;  // the whole global batch
    std::copy_n(batch.input, samples * model_.input_shape().elements(), activations_.input());
    const float* logits = run_.forward(activations_, samples, true, tally);
    const LossResult loss = softmax_cross_entropy(logits, batch.labels, samples, classes_,
                                                  run_.output_gradient(activations_), double(batch.global_size));
    const double forward_comm_s = tally.comm_s;
    const auto forwarded = Clock::now();
    run_.backward(activations_, samples, tally);
    const auto backwarded = Clock::now();
    optimizer_.step(model_.parameters());
    if (split_.part == 0) {  // every rank computed the same loss: report it once
      result.loss_sum = loss.loss_sum;
      result.correct = loss.correct;
    }
    result.forward_s = seconds_between(start, forwarded) - forward_comm_s;
    result.backward_s = seconds_between(forwarded, backwarded) - (tally.comm_s - forward_comm_s);
    result.comm_s = tally.comm_s;
    result.update_s = seconds_between(backwarded, Clock::now());
    predicted_.forward += tally.predicted.forward;
    predicted_.backward += tally.predicted.backward;
    textbook_.forward += tally.textbook.forward;
    textbook_.backward += tally.textbook.backward;
    return result;
  }

  StepResult evaluate(const StepBatch& batch) override {
    StepResult result;
    CommTally tally;
    tally.training = false;  // evaluation: its traffic is not counted
    const auto start = Clock::now();
    std::copy_n(batch.input, batch.local_size * model_.input_shape().elements(), activations_.input());
    const float* logits = run_.forward(activations_, batch.local_size, false, tally);
    if (split_.part == 0) {
      const LossResult loss = softmax_cross_entropy(logits, batch.labels, batch.local_size, classes_, nullptr, 1.0);
      result.loss_sum = loss.loss_sum;
      result.correct = loss.correct;
    }
    result.comm_s = tally.comm_s;
    result.forward_s = seconds_between(start, Clock::now()) - tally.comm_s;
    return result;
  }

  ModeTraffic traffic() const override { return traffic_of({&forward_group_.group()}, {&backward_group_.group()}, {}); }
  PhaseCounts predicted_sent_bytes() const override { return predicted_; }
  PhaseCounts textbook_sent_bytes() const override { return textbook_; }

  std::span<float> parameters() override { return model_.parameters().values(); }
  std::span<float> velocity() override { return optimizer_.velocity(); }
  bool replicated() const override { return false; }
  std::pair<double, double> parameter_sums() const override { return tensor_parameter_sums(model_, split_); }
  Model& local_model() override { return model_; }

 private:
  TensorSplit split_;
  Model model_;
  SgdMomentum optimizer_;
  Activations activations_;
  PhaseGroup forward_group_, backward_group_;
  TensorParallelRun run_;
  size_t classes_;
  PhaseCounts predicted_, textbook_;
};

}  // namespace

std::unique_ptr<ParallelMode> make_tensor_parallel(Comm& comm, const TrainOptions& options, const ModelPlan& plan,
                                                   Backend& backend) {
  if (options.grid.tp != comm.size() || options.grid.dp != 1 || options.grid.pp != 1)
    throw UsageError("tensor mode needs a grid of tp = " + std::to_string(comm.size()) + " ranks (dp = pp = 1)");
  return std::make_unique<TensorParallel>(comm, options, plan, backend);
}

}  // namespace cclab::train
