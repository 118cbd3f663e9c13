// Pipeline-parallel training (DESIGN 3.6): GPipe and 1F1B schedules (pipeline_schedule.h) over
// stages of consecutive layers (stage_balance.h), and the data x pipeline grid (dp replicas of a
// pp-stage pipeline).
//
// Ranks. Rank = replica x pp + stage. Every stage of a replica loads the same shard of each global
// batch (shard {replica, dp}); the first stage feeds the images, the last compares with the labels.
//
// Stages. Before training, rank 0 times every layer's forward + backward on one micro-batch of the
// whole model, shares the times (bootstrap allgather) and every rank picks the same contiguous split
// that minimises the slowest stage (or takes --balance, as a resumed run does from its checkpoint). Stage s builds only
// its layers; configs keep their global layer index, so its initial weights are exactly the whole model's.
//
// A step. The replica's shard of the global batch is cut into m contiguous micro-batches. Stage s
// sends micro-batch i's output activation to stage s + 1 in the forward phase and receives the
// gradient w.r.t. it back in the backward phase (2m messages per boundary per step, B x a x 4 bytes
// each way, DESIGN 3.7). The last stage computes the loss, normalised by the GLOBAL batch size, and
// every stage accumulates its parameter gradients over the micro-batches, so after the flush (and,
// with dp > 1, an allreduce over the stage's replicas in DDP buckets (gradient_buckets.h), started
// during the step's last backward) one SGD step gives the single-process step.
//
// Traffic. The forward activations, the backward gradients and the replicas' allreduce each go
// through their own ProcessGroup (ids 21, 22, 23), so their counters give the bytes of each phase
// even when 1F1B interleaves forward and backward messages.
//
// Time. forward_s / backward_s: computation (with the loss and the first stage's input copy);
// comm_s: posting sends and receives, progressing the transport between layers, and the replicas'
// allreduce (starting, polling, finishing). Blocking on a neighbour's message (the pipeline bubble)
// counts in neither: the training loop reports it as idle.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <limits>
#include <sstream>

#include "cclab/comm.h"
#include "cclab/error.h"
#include "cclab/trace.h"
#include "layer_times.h"
#include "model/loss.h"
#include "model/optimizer.h"
#include "modes/gradient_buckets.h"
#include "modes/mode.h"
#include "modes/pipeline_schedule.h"
#include "modes/process_group.h"
#include "modes/stage_balance.h"

namespace cclab::train {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// Runs `work` and adds its wall time to `total`.
template <typename Work>
void timed(double& total, Work&& work) {
  const auto start = Clock::now();
  work();
  total += seconds_since(start);
}

constexpr unsigned kForwardGroupId = 21, kBackwardGroupId = 22, kReplicaGroupId = 23;

// Point-to-point message ids (24 bits): the exchange number (training steps and evaluation batches
// counted together, modulo 2^11) above the micro-batch index (13 bits). The direction is in the
// group: activations travel in group 21, gradients in group 22. Neighbours are at most one step
// apart, so ids never collide among the messages in flight between a pair.
constexpr uint32_t kMicroBatchBits = 13;
constexpr size_t kMaxMicroBatches = size_t{1} << kMicroBatchBits;
constexpr uint32_t kExchangeMask = (uint32_t{1} << (24 - kMicroBatchBits)) - 1;

// Rank 0's layer times on every rank (bootstrap allgather: before training, outside timed steps),
// written as hexadecimal floats so that every rank computes the same split from the same numbers.
std::vector<double> layer_seconds_of_rank0(Comm& comm, const ModelPlan& plan, Backend& backend, uint64_t seed,
                                           size_t micro_batch) {
  std::string mine;
  if (comm.rank() == 0) {
    char number[40];
    for (double seconds : measure_layer_seconds(plan.layers, backend, seed, micro_batch)) {
      std::snprintf(number, sizeof number, "%a ", seconds);
      mine += number;
    }
  }
  const std::string theirs = comm.allgather(mine).at(0);
  std::vector<double> seconds(plan.layers.size());
  const char* cursor = theirs.c_str();
  for (double& value : seconds) {
    char* end = nullptr;
    value = std::strtod(cursor, &end);
    if (end == cursor) throw Error("rank 0 sent " + theirs + " as the layer times");
    cursor = end;
  }
  return seconds;
}

// Where this rank sits in the grid and what its stage runs.
struct StageLayout {
  size_t stages = 1, replicas = 1, stage = 0, replica = 0;
  size_t micro_batches = 1;        // per step, at most the replica's batch (fewer for smaller shards)
  std::vector<size_t> boundaries;  // stage s: layers [boundaries[s], boundaries[s + 1])
  std::string description;
};

std::string describe_plan(const ModelPlan& plan, const StageLayout& layout, const std::string& schedule,
                          const std::vector<double>& layer_seconds, size_t micro_batch) {
  std::ostringstream text;
  text.precision(3);
  text << "# pipeline: " << layout.stages << (layout.stages == 1 ? " stage" : " stages") << " x " << layout.replicas
       << (layout.replicas == 1 ? " replica" : " replicas") << ", " << layout.micro_batches << " micro-batches"
       << " of up to " << micro_batch << ", " << schedule;
  for (size_t s = 0; s < layout.stages; ++s) {
    const size_t first = layout.boundaries[s], end = layout.boundaries[s + 1];
    double seconds = 0;
    std::string names;
    for (size_t i = first; i < end; ++i) {
      seconds += layer_seconds[i];
      if (i > first) names += ',';
      names += plan.layers[i].name();
    }
    text << (s == 0 ? "; " : ", ") << "stage " << s << ": layers " << first;
    if (end - first > 1) text << "-" << end - 1;
    text << " (" << names << ", measured " << seconds * 1e3 << " ms)";
  }
  text << "\n";
  return text.str();
}

// The buffers of one micro-batch in flight on this stage and the transfers that use them.
struct MicroBatchSlot {
  MicroBatchSlot(const Model& model, size_t max_batch) : activations(model, max_batch) {}
  Activations activations;
  RequestPtr input_receive;     // the previous stage's output, into activation(0)
  RequestPtr gradient_receive;  // the next stage's input gradient, into output_gradient()
  RequestPtr output_send;       // output() to the next stage
  RequestPtr gradient_send;     // gradient(0) to the previous stage
};

// Slots reused across micro-batches and steps. A released slot may still have its sends in flight;
// a send's buffer is only overwritten by the forward (output()) or backward (gradient(0)) of a later
// micro-batch in the same slot, which completes that send first. Posting the next receive into
// activation(0) does not have to wait for them.
class SlotPool {
 public:
  // Slots for micro-batches of up to `max_batch` samples (rebuilt, between steps, if larger).
  void fit(const Model& model, size_t max_batch) {
    if (max_batch <= max_batch_) return;
    slots_.clear();
    free_.clear();
    max_batch_ = max_batch;
    model_ = &model;
  }
  MicroBatchSlot& acquire() {
    if (free_.empty()) {
      slots_.push_back(std::make_unique<MicroBatchSlot>(*model_, max_batch_));
      return *slots_.back();
    }
    MicroBatchSlot* slot = free_.front();
    free_.pop_front();
    return *slot;
  }
  void release(MicroBatchSlot& slot) { free_.push_back(&slot); }
  const std::vector<std::unique_ptr<MicroBatchSlot>>& slots() const { return slots_; }

 private:
  const Model* model_ = nullptr;
  size_t max_batch_ = 0;
  std::vector<std::unique_ptr<MicroBatchSlot>> slots_;
  std::deque<MicroBatchSlot*> free_;  // the longest released first: its sends had the most time
};

std::vector<int> replica_pipeline_ranks(const StageLayout& layout) {
  std::vector<int> ranks;
  for (size_t s = 0; s < layout.stages; ++s) ranks.push_back(int(layout.replica * layout.stages + s));
  return ranks;
}

std::vector<int> stage_replica_ranks(const StageLayout& layout) {
  std::vector<int> ranks;
  for (size_t r = 0; r < layout.replicas; ++r) ranks.push_back(int(r * layout.stages + layout.stage));
  return ranks;
}

class PipelineParallel final : public ParallelMode {
 public:
  PipelineParallel(Comm& comm, const TrainOptions& options, const ModelPlan& plan, Backend& backend, StageLayout layout)
      : comm_(comm),
        layout_(std::move(layout)),
        schedule_(options.schedule),
        model_(std::vector<LayerConfig>(plan.layers.begin() + ptrdiff_t(layout_.boundaries[layout_.stage]),
                                        plan.layers.begin() + ptrdiff_t(layout_.boundaries[layout_.stage + 1])),
               backend, options.seed),
        optimizer_(model_.parameters().size(), float(options.learning_rate), float(options.momentum)),
        forward_group_(comm, replica_pipeline_ranks(layout_), kForwardGroupId),
        backward_group_(comm, replica_pipeline_ranks(layout_), kBackwardGroupId),
        replica_group_(comm, stage_replica_ranks(layout_), kReplicaGroupId),
        input_elements_(model_.input_shape().elements()),
        output_elements_(model_.output_shape().elements()) {
    // The buckets compile their allreduce schedules now, outside the timed steps.
    if (layout_.replicas > 1)
      replica_sync_ = std::make_unique<GradientBuckets>(replica_group_, model_.parameters().gradients(),
                                                        model_.parameters().backward_order(), options.bucket_bytes);
  }

  Shard shard() const override { return {layout_.replica, layout_.replicas}; }
  std::string describe() const override { return layout_.description; }
  std::string layout() const override {
    std::string text = "balance=";
    for (size_t s = 0; s < layout_.stages; ++s) {
      if (s > 0) text += ',';
      text += std::to_string(layout_.boundaries[s + 1] - layout_.boundaries[s]);
    }
    return text;
  }

  StepResult train_step(const StepBatch& batch) override {
    const std::vector<MicroBatch> micro_batches = split_micro_batches(batch.local_size, layout_.micro_batches);
    const std::vector<PipelineAction> actions =
        pipeline_schedule(schedule_, layout_.stage, layout_.stages, micro_batches.size());
    train_slots_.fit(model_, largest_micro_batch(micro_batches));
    if (replica_sync_) replica_sync_->begin_step();
    StepResult result = run_actions(batch, micro_batches, actions, true, train_slots_, max_in_flight(actions));
    if (micro_batches.empty()) {  // an empty shard: this stage ran no backward and contributes zeros
      timed(result.backward_s, [&] { model_.parameters().zero_gradients(); });
      if (replica_sync_)
        for (const ParameterRange& range : model_.parameters().backward_order()) replica_sync_->ready(range);
    }
    if (replica_sync_) {  // the rest of the replicas' allreduce
      replica_sync_->finish();
      result.comm_s += replica_sync_->comm_s();
      predicted_.grad_sync += replica_sync_->predicted_sent_bytes();
      textbook_.grad_sync += replica_sync_->textbook_sent_bytes();
    }
    timed(result.update_s, [&] { optimizer_.step(model_.parameters()); });

    // A boundary's messages are whole activations: the formula (B x a x 4 each way) is exact.
    for (const MicroBatch& micro : micro_batches) {
      if (!last_stage()) predicted_.forward += double(micro.size * output_elements_ * sizeof(float));
      if (!first_stage()) predicted_.backward += double(micro.size * input_elements_ * sizeof(float));
    }
    textbook_.forward = predicted_.forward;
    textbook_.backward = predicted_.backward;
    return result;
  }

  StepResult evaluate(const StepBatch& batch) override {
    const std::vector<MicroBatch> micro_batches = split_micro_batches(batch.local_size, layout_.micro_batches);
    std::vector<PipelineAction> forwards;
    for (size_t i = 0; i < micro_batches.size(); ++i) forwards.push_back({PipelineAction::Kind::forward, i});
    eval_slots_.fit(model_, largest_micro_batch(micro_batches));
    ProcessGroup::Uncounted forward(forward_group_), backward(backward_group_);  // not a training step
    // Two slots: one micro-batch computes while the next one's input arrives.
    return run_actions(batch, micro_batches, forwards, false, eval_slots_, 2);
  }

  ModeTraffic traffic() const override { return traffic_of({&forward_group_}, {&backward_group_}, {&replica_group_}); }
  PhaseCounts predicted_sent_bytes() const override { return predicted_; }
  PhaseCounts textbook_sent_bytes() const override { return textbook_; }

  std::span<float> parameters() override { return model_.parameters().values(); }
  std::span<float> velocity() override { return optimizer_.velocity(); }
  bool replicated() const override { return false; }

  std::pair<double, double> parameter_sums() const override {
    double sum = 0, abs_sum = 0;
    if (layout_.replica == 0)
      for (float value : model_.parameters().values()) {
        sum += value;
        abs_sum += std::fabs(value);
      }
    return {sum, abs_sum};
  }

  Model& local_model() override { return model_; }

 private:
  bool first_stage() const { return layout_.stage == 0; }
  bool last_stage() const { return layout_.stage + 1 == layout_.stages; }

  // Blocking waits (not timed: idle) with the group's deadline; the request is done with after.
  // `what` names the wait in a trace: "bubble" where the stage waits for its neighbour's data.
  static void wait_for(ProcessGroup& group, RequestPtr& request, std::string_view what) {
    if (!request) return;
    const TraceSpan span("idle", what);
    group.wait(*request);
    request.reset();
  }

  // Forward and backward of this stage's layers one at a time, progressing the transport between
  // layers: a rendezvous transfer to or from a neighbour moves only while both sides progress, and a
  // stage that ran a whole micro-batch without doing so would hold its neighbour's message back for
  // that long (the neighbour then waits for data that is ready).
  void run_forward(Activations& activations, size_t batch, bool training, StepResult& result) {
    for (size_t layer = 0; layer < model_.size(); ++layer) {
      timed(result.forward_s, [&] { model_.forward(activations, batch, training, layer, layer + 1); });
      timed(result.comm_s, [&] { comm_.transport().progress(); });
    }
  }
  // `last_of_step`: the step's last backward, after which each layer's gradients are final.
  void run_backward(Activations& activations, size_t batch, bool accumulate, bool last_of_step, StepResult& result) {
    BackwardOptions options;
    options.accumulate = accumulate;
    for (size_t layer = model_.size(); layer-- > 0;) {
      // Every layer's input gradient feeds the layer before; the first layer's is sent back to the
      // previous stage (none before the first stage).
      options.input_gradient = layer > 0 || !first_stage();
      timed(result.backward_s, [&] { model_.backward(activations, batch, options, layer, layer + 1); });
      const ParameterRange& range = model_.parameters().range(layer);
      // The hook times itself: its time joins comm_s after the step (GradientBuckets::comm_s).
      if (last_of_step && range.count > 0 && replica_sync_) replica_sync_->ready(range);
      timed(result.comm_s, [&] { comm_.transport().progress(); });
    }
  }

  // Runs this stage's `actions` (forward and backward passes of micro-batches, in order) for one
  // step or evaluation batch, with at most `slot_limit` micro-batches holding buffers at a time.
  StepResult run_actions(const StepBatch& batch, const std::vector<MicroBatch>& micro_batches,
                         const std::vector<PipelineAction>& actions, bool training, SlotPool& pool, size_t slot_limit) {
    StepResult result;
    const uint32_t exchange = (exchange_++ & kExchangeMask) << kMicroBatchBits;
    const auto message = [exchange](size_t micro_batch) { return exchange | uint32_t(micro_batch); };
    const int previous = int(layout_.stage) - 1, next = int(layout_.stage) + 1;
    std::vector<MicroBatchSlot*> slot_of(micro_batches.size(), nullptr);
    size_t prepared = 0, slots_in_use = 0;
    bool first_backward = true;
    size_t backwards_left = 0;
    for (const PipelineAction& action : actions) backwards_left += action.kind == PipelineAction::Kind::backward;

    // Gives the next micro-batches (in order) their slots while the limit allows and starts filling
    // their inputs: the first stage copies its images, the others post the receive of the previous
    // stage's output at once, so that it can arrive while this stage is busy. The schedule's order
    // guarantees that a micro-batch is prepared by the time its forward comes (slot_limit is at
    // least the schedule's micro-batches in flight).
    const auto prepare_inputs = [&] {
      while (prepared < micro_batches.size() && slots_in_use < slot_limit) {
        MicroBatchSlot& slot = pool.acquire();
        ++slots_in_use;
        const MicroBatch& micro = micro_batches[prepared];
        const size_t count = micro.size * input_elements_;
        if (first_stage())
          timed(result.forward_s,
                [&] { std::copy_n(batch.input + micro.offset * input_elements_, count, slot.activations.input()); });
        else
          timed(result.comm_s, [&] {
            slot.input_receive = forward_group_.irecv(previous, slot.activations.input(), count, message(prepared));
          });
        slot_of[prepared++] = &slot;
      }
    };
    const auto release = [&](size_t micro_batch) {
      pool.release(*slot_of[micro_batch]);
      slot_of[micro_batch] = nullptr;
      --slots_in_use;
      prepare_inputs();
    };

    prepare_inputs();
    for (const PipelineAction& action : actions) {
      const size_t index = action.micro_batch;
      const MicroBatch& micro = micro_batches[index];
      MicroBatchSlot& slot = *slot_of.at(index);
      Activations& activations = slot.activations;
      if (action.kind == PipelineAction::Kind::forward) {
        wait_for(forward_group_, slot.input_receive, "bubble");
        // A previous micro-batch's send, from the buffer forward fills.
        wait_for(forward_group_, slot.output_send, "wait send");
        run_forward(activations, micro.size, training, result);
        if (last_stage())
          timed(result.forward_s, [&] {
            const LossResult loss =
                softmax_cross_entropy(activations.output(), batch.labels + micro.offset, micro.size, output_elements_,
                                      training ? activations.output_gradient() : nullptr, double(batch.global_size));
            result.loss_sum += loss.loss_sum;
            result.correct += loss.correct;
          });
        if (!last_stage())
          timed(result.comm_s, [&] {
            slot.output_send =
                forward_group_.isend(next, activations.output(), micro.size * output_elements_, message(index));
            // Posted now, long before the gradient comes back: the next stage never waits for it.
            if (training)
              slot.gradient_receive = backward_group_.irecv(next, activations.output_gradient(),
                                                            micro.size * output_elements_, message(index));
          });
        if (!training) release(index);
      } else {
        wait_for(backward_group_, slot.gradient_receive, "bubble");
        wait_for(backward_group_, slot.gradient_send, "wait send");  // a previous micro-batch's, from gradient 0
        run_backward(activations, micro.size, !first_backward, --backwards_left == 0, result);
        first_backward = false;
        if (!first_stage())
          timed(result.comm_s, [&] {
            slot.gradient_send =
                backward_group_.isend(previous, activations.gradient(0), micro.size * input_elements_, message(index));
          });
        release(index);
      }
    }
    // The step ends with the pipeline flushed: no transfer outlives it.
    for (const auto& slot : pool.slots()) {
      wait_for(forward_group_, slot->output_send, "wait send");
      wait_for(backward_group_, slot->gradient_send, "wait send");
    }
    return result;
  }

  Comm& comm_;
  StageLayout layout_;
  std::string schedule_;
  Model model_;
  SgdMomentum optimizer_;
  ProcessGroup forward_group_, backward_group_, replica_group_;
  size_t input_elements_, output_elements_;
  SlotPool train_slots_, eval_slots_;
  uint32_t exchange_ = 0;
  // dp > 1: the stage's gradients summed over its replicas (DDP buckets, started during the step's
  // last backward; the loss is normalised by the global batch, so the sum is the single-process one).
  std::unique_ptr<GradientBuckets> replica_sync_;
  PhaseCounts predicted_, textbook_;
};

}  // namespace

std::unique_ptr<ParallelMode> make_pipeline_parallel(Comm& comm, const TrainOptions& options, const ModelPlan& plan,
                                                     Backend& backend) {
  const Grid& grid = options.grid;
  if (grid.tp != 1)
    throw UsageError("the pipeline grid has data and pipeline dimensions only: tp must be 1, not " +
                     std::to_string(grid.tp));
  if (grid.dp < 1 || grid.pp < 1 || grid.dp * grid.pp != comm.size())
    throw UsageError("the grid dp=" + std::to_string(grid.dp) + ",pp=" + std::to_string(grid.pp) + " needs " +
                     std::to_string(grid.dp * grid.pp) + " ranks, this job has " + std::to_string(comm.size()));
  if (size_t(grid.pp) > plan.layers.size())
    throw UsageError(std::to_string(grid.pp) + " pipeline stages for a model of " + std::to_string(plan.layers.size()) +
                     " layers: every stage needs at least one layer");
  pipeline_schedule(options.schedule, 0, 1, 0);  // throws UsageError for an unknown schedule
  if (options.batch < size_t(grid.dp))
    throw UsageError("--batch " + std::to_string(options.batch) + " is smaller than the " + std::to_string(grid.dp) +
                     " pipeline replicas: every replica needs at least one sample per step");
  if (options.microbatches > kMaxMicroBatches)
    throw UsageError("--microbatches must be at most " + std::to_string(kMaxMicroBatches));

  StageLayout layout;
  layout.stages = size_t(grid.pp);
  layout.replicas = size_t(grid.dp);
  layout.stage = size_t(comm.rank()) % layout.stages;
  layout.replica = size_t(comm.rank()) / layout.stages;
  const size_t replica_batch = (options.batch + layout.replicas - 1) / layout.replicas;
  layout.micro_batches = std::min(options.microbatches > 0 ? options.microbatches : 4 * layout.stages, replica_batch);
  const size_t micro_batch = (replica_batch + layout.micro_batches - 1) / layout.micro_batches;
  const std::vector<double> layer_seconds = layer_seconds_of_rank0(comm, plan, backend, options.seed, micro_batch);
  layout.boundaries = options.balance.empty() ? balance_stages(layer_seconds, layout.stages)
                                              : given_balance(options.balance, layout.stages, plan.layers.size());
  layout.description = describe_plan(plan, layout, options.schedule, layer_seconds, micro_batch);
  return std::make_unique<PipelineParallel>(comm, options, plan, backend, std::move(layout));
}

}  // namespace cclab::train
