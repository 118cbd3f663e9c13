#include "trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <sstream>
#include <utility>

#include "backends/cuda/cuda_backend.h"
#include "backends/onednn/onednn_backend.h"
#include "cclab/comm.h"
#include "cclab/error.h"
#include "cclab/launch.h"
#include "cclab/test_fault.h"
#include "cclab/trace.h"
#include "checkpoint.h"
#include "data/loader.h"
#include "layer_times.h"
#include "model/loss.h"
#include "modes/mode.h"
#include "patterns/hierarchy.h"
#include "progress.h"
#include "report.h"
#include "results.h"
#include "statistics.h"

namespace cclab::train {
namespace {

using Clock = std::chrono::steady_clock;
double seconds(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

int positive_env(const char* name) {
  const char* value = std::getenv(name);
  if (!value || !*value) return 0;
  char* end = nullptr;
  const long parsed = std::strtol(value, &end, 10);
  return (*end == '\0' && parsed > 0 && parsed < 4096) ? int(parsed) : 0;
}

void validate(const TrainOptions& options) {
  if (options.batch == 0) throw UsageError("--batch must be at least 1");
  if (options.epochs == 0 && options.steps == 0) throw UsageError("--epochs must be at least 1");
  if (!(options.learning_rate > 0) || !std::isfinite(options.learning_rate))
    throw UsageError("--lr must be a positive number");
  if (!(options.momentum >= 0 && options.momentum < 1)) throw UsageError("--momentum must be in [0, 1)");
  if (options.mode != "data" && options.mode != "tensor" && options.mode != "pipeline" && options.mode != "hybrid" &&
      options.mode != "ps" && options.mode != "fedavg")
    throw UsageError("unknown --mode '" + options.mode + "' (data, tensor, pipeline, hybrid, ps, fedavg)");
  if (options.schedule != "gpipe" && options.schedule != "1f1b")
    throw UsageError("unknown --schedule '" + options.schedule + "' (gpipe, 1f1b)");
  if (options.bucket_bytes < 4) throw UsageError("--bucket-mb must hold at least one float");
  if (options.resume && options.checkpoint_dir.empty()) throw UsageError("--resume needs --checkpoint-dir");
  if (options.checkpoint_every > 0 && options.checkpoint_dir.empty())
    throw UsageError("--checkpoint-every needs --checkpoint-dir");
}

// Every rank's values (comm.allgather: bootstrap traffic, outside timed regions).
std::vector<std::vector<double>> gather_over_ranks(Comm& comm, const std::vector<double>& mine) {
  std::ostringstream text;
  text.precision(17);
  for (double value : mine) text << value << ' ';
  std::vector<std::vector<double>> result;
  for (const std::string& theirs : comm.allgather(text.str())) {
    std::istringstream in(theirs);
    result.emplace_back(mine.size(), 0.0);
    for (double& value : result.back()) in >> value;
  }
  return result;
}

// Sums over ranks, element by element, in rank order.
std::vector<double> sum_over_ranks(Comm& comm, const std::vector<double>& mine) {
  std::string text;
  char number[40];
  for (double value : mine) {
    std::snprintf(number, sizeof number, "%a ", value);
    text += number;
  }
  std::vector<double> result(mine.size(), 0.0);
  for (const std::string& theirs : comm.allgather(text)) {
    const char* cursor = theirs.c_str();
    for (double& value : result) {
      char* end = nullptr;
      value += std::strtod(cursor, &end);
      cursor = end;
    }
  }
  return result;
}

PhaseTimes operator+(const PhaseTimes& a, const PhaseTimes& b) {
  return {a.data_s + b.data_s, a.forward_s + b.forward_s, a.backward_s + b.backward_s, a.update_s + b.update_s,
          a.comm_s + b.comm_s};
}
PhaseTimes operator/(const PhaseTimes& a, double n) {
  return {a.data_s / n, a.forward_s / n, a.backward_s / n, a.update_s / n, a.comm_s / n};
}

// Mean step time from the summed phase times and wall time of `steps` steps (DESIGN 3.6):
// compute = data loading + forward + backward + update; comm = time inside communication calls
// (the mode's accounting, modes/mode.h); idle = the rest of the wall time: waiting for peers that
// are behind, for transfers still in flight, and pipeline bubbles.
StepTime step_time(const PhaseTimes& sums, double wall_s, size_t steps) {
  StepTime time;
  const double n = double(steps);
  time.total_s = wall_s / n;
  time.compute_s = (sums.data_s + sums.forward_s + sums.backward_s + sums.update_s) / n;
  time.comm_s = sums.comm_s / n;
  time.idle_s = std::max(0.0, time.total_s - time.compute_s - time.comm_s);
  return time;
}

class NullBuffer : public std::streambuf {
 protected:
  int overflow(int c) override { return c; }
};

// Loss sums and correct counts of every rank's share, summed over ranks (bootstrap traffic outside
// timed regions; a one-rank run has no Comm).
std::vector<double> sum_shares(Comm* comm, const std::vector<double>& mine) {
  return comm ? sum_over_ranks(*comm, mine) : mine;
}

// Test-set loss and accuracy through the mode, in global batches of the training batch size.
Evaluation evaluate_mode(ParallelMode& mode, Comm* comm, const Dataset& dataset, size_t batch) {
  BatchLoader loader(dataset, std::min(batch, dataset.size()), 0, false, mode.shard());
  std::vector<float> images(loader.max_local_batch() * dataset.sample_shape().elements());
  std::vector<int32_t> labels(loader.max_local_batch());
  double sums[2] = {0, 0};
  for (size_t step = 0; step < loader.steps_per_epoch(); ++step) {
    const BatchInfo info = loader.load(0, step, images.data(), labels.data());
    const StepResult result = mode.evaluate({images.data(), labels.data(), info.local_size, info.global_size});
    sums[0] += result.loss_sum;
    sums[1] += double(result.correct);
  }
  const std::vector<double> total = sum_shares(comm, {sums[0], sums[1]});
  return {total[0] / double(dataset.size()), total[1] / double(dataset.size())};
}

// A resumed pipeline run splits the model as the run that wrote the checkpoint did ("balance=4,5"
// in its layout): its stages were balanced by time measured then, which a new measurement may not
// reproduce.
TrainOptions with_checkpoint_layout(TrainOptions options, int rank) {
  if (!options.resume || !options.balance.empty()) return options;
  std::string layout = read_checkpoint_layout(options.checkpoint_dir, rank);
  if (layout.empty()) layout = read_checkpoint_layout(options.checkpoint_dir, -1);
  const std::string key = "balance=";
  if (layout.rfind(key, 0) != 0) return options;
  std::stringstream in(layout.substr(key.size()));
  for (std::string item; std::getline(in, item, ',');) options.balance.push_back(std::stoul(item));
  return options;
}

// What the end of a run takes from every rank (gathered once): the indices of rank_figures().
enum RankFigure {
  kTotal,
  kCompute,
  kComm,
  kIdle,
  kTrainTime,
  kFirstStep,
  kMemory,
  kSentTotal,
  kPredictedTotal,
  // Blocks of PhaseCounts::kPhases figures, one per phase in PhaseCounts' order.
  kSentByPhase,
  kPredictedByPhase = kSentByPhase + PhaseCounts::kPhases,
  kTextbookByPhase = kPredictedByPhase + PhaseCounts::kPhases,
  kMessagesByPhase = kTextbookByPhase + PhaseCounts::kPhases,
  kReceived = kMessagesByPhase + PhaseCounts::kPhases,
  kMessagesReceived,
  kFigures
};

// What one epoch's steps leave on this rank: the time of its timed steps, and its share of every
// step's loss sum and correct count with the step's global batch size. The shares are summed over
// ranks after the epoch (outside the timed steps), which gives the global batch's mean loss of
// every step.
struct EpochSteps {
  explicit EpochSteps(size_t steps) : local(2 * steps, 0.0), global_sizes(steps, 0.0) {}
  PhaseTimes sums;
  double wall_s = 0;
  size_t timed_steps = 0, timed_samples = 0;
  std::vector<double> local, global_sizes;
};

// One training run on this rank, one method per step of it; train() runs them in order. Rank 0
// prints to the stream and writes the records.
class TrainingRun {
 public:
  TrainingRun(const TrainOptions& options, const std::vector<std::string>& argv, std::ostream& out, Comm* comm)
      : options_(options),
        argv_(argv),
        comm_(comm),
        rank_(comm ? comm->rank() : 0),
        null_stream_(&null_buffer_),
        out_(rank_ == 0 ? out : null_stream_),
        progress_(rank_ == 0) {}

  TrainSummary train() {
    plan_model_and_open_data();
    build_mode();
    describe_checkpoints();
    if (options_.resume) resume_from_checkpoint();
    first_epoch_ = done_steps_ / steps_per_epoch_;
    print_header();
    start_trace();
    for (size_t epoch = first_epoch_; epoch < epochs_; ++epoch) train_epoch(epoch);
    summarise_run();
    take_figures_over_ranks();
    report();
    if (trace_) out_ << write_trace(comm_ ? &comm_->bootstrap() : nullptr, *trace_, options_.trace_path, argv_);
    return run_;
  }

 private:
  // The model planned for the data's shape and checked against it; the records' file, opened before
  // the data so that an unwritable one fails early; the compute threads; the data.
  void plan_model_and_open_data() {
    if (options_.batch < size_t(options_.grid.dp))
      throw UsageError("--batch " + std::to_string(options_.batch) + " is smaller than the " +
                       std::to_string(options_.grid.dp) + " data-parallel ranks: every one needs a sample per step");
    source_ = parse_data_source(options_.data, options_.data_directory);
    run_.plan = plan_model(options_.model, source_.shape);
    const size_t classes = run_.plan.output().elements();
    if (source_.kind == DataSource::Kind::fashion_mnist && classes != 10)
      throw UsageError("the model ends in " + std::to_string(classes) + " outputs but fashion-mnist has 10 classes");
    writer_.emplace(rank_ == 0 ? options_.json_path : std::string());
    std::tie(run_.threads, run_.threads_source) = resolve_compute_threads(options_.threads);
    set_compute_threads(run_.threads);
    data_ = open_data(source_, classes, options_.seed);
    run_.train_description = data_.train->description();
    run_.test_description = data_.test->description();
    open_backend();
  }

  // The layers' library, and with a GPU the device whose memory every later buffer comes from.
  void open_backend() {
    if (options_.device == "cuda") {
      GpuBackend gpu = open_cuda_backend(comm_ ? NodeLayout(comm_->topology().node_of_rank).local_index(rank_) : 0);
      backend_ = std::move(gpu.layers);
      device_.emplace(gpu.device);
      run_.backend_description = "cuDNN " + gpu.cudnn_version + " and cuBLAS " + gpu.cublas_version + " on " + gpu.gpu;
      run_.backend_record = {
          {"name", "cudnn"}, {"version", gpu.cudnn_version}, {"cublas", gpu.cublas_version}, {"gpu", gpu.gpu}};
      return;
    }
    backend_ = std::make_unique<OnednnBackend>();
    run_.backend_description =
        "oneDNN " + onednn_version() + " (" + onednn_cpu_runtime() + ", " + onednn_cpu_isa() + ")";
    run_.backend_record = {{"name", "onednn"},
                           {"version", onednn_version()},
                           {"cpu_runtime", onednn_cpu_runtime()},
                           {"isa", onednn_cpu_isa()}};
  }

  // This rank's part of the mode, the loader of its shard and the run's length.
  void build_mode() {
    buffers_before_mode_ = thread_buffer_bytes();
    mode_ = make_mode(comm_, options_, run_.plan, *backend_);
    run_.parameters = run_.plan.parameter_count();
    run_.buckets = mode_->buckets();
    run_.grad_sync_path = mode_->grad_sync_path();
    run_.split = mode_->describe();
    if (options_.profile_layers) mode_->local_model().set_profile(&profile_);
    loader_.emplace(*data_.train, options_.batch, options_.seed, true, mode_->shard());
    images_.resize(loader_->max_local_batch() * data_.train->sample_shape().elements());
    labels_.resize(loader_->max_local_batch());
    steps_per_epoch_ = loader_->steps_per_epoch();
    total_steps_ = options_.steps > 0 ? options_.steps : options_.epochs * steps_per_epoch_;
    epochs_ = (total_steps_ + steps_per_epoch_ - 1) / steps_per_epoch_;
  }

  // Checkpoints: the state is parameters, momentum and the global step count (data order and
  // initial weights are pure functions of the seed and epoch). Replicated modes share one file that
  // rank 0 writes; the others write one file per rank.
  void describe_checkpoints() {
    checkpoint_header_.model = options_.model;
    checkpoint_header_.data = options_.data;
    checkpoint_header_.mode = options_.mode;
    checkpoint_header_.layout = mode_->layout();
    checkpoint_header_.parameters = mode_->parameters().size();
    checkpoint_header_.ranks = uint64_t(comm_ ? comm_->size() : 1);
    checkpoint_header_.global_batch = options_.batch;
    checkpoint_header_.seed = options_.seed;
    checkpoint_header_.learning_rate = options_.learning_rate;
    checkpoint_header_.momentum = options_.momentum;
    checkpoint_part_ = mode_->replicated() ? -1 : rank_;
  }

  void resume_from_checkpoint() {
    CheckpointState state = read_checkpoint(options_.checkpoint_dir, checkpoint_part_, checkpoint_header_);
    if (state.steps >= total_steps_)
      throw UsageError("cannot resume from checkpoint " + checkpoint_path(options_.checkpoint_dir, checkpoint_part_) +
                       ": it is at step " + std::to_string(state.steps) + ", this run ends at step " +
                       std::to_string(total_steps_));
    std::copy(state.parameters.begin(), state.parameters.end(), mode_->parameters().begin());
    std::copy(state.velocity.begin(), state.velocity.end(), mode_->velocity().begin());
    done_steps_ = state.steps;
    if (comm_ && !mode_->replicated()) check_parts_at_same_step();
    mode_->resumed();
  }

  // A kill between two ranks' writes leaves their per-rank checkpoints at different steps.
  void check_parts_at_same_step() {
    for (const auto& theirs : gather_over_ranks(*comm_, {double(done_steps_)}))
      if (theirs[0] != double(done_steps_))
        throw UsageError("cannot resume: the per-rank checkpoints in " + options_.checkpoint_dir +
                         " are at different steps (" + std::to_string(size_t(theirs[0])) + " and " +
                         std::to_string(done_steps_) + ")");
  }

  void save_checkpoint() {
    if (options_.checkpoint_dir.empty()) return;
    mode_->prepare_checkpoint();
    if (checkpoint_part_ < 0 && rank_ != 0) return;
    write_checkpoint(options_.checkpoint_dir, checkpoint_part_, checkpoint_header_, mode_->parameters(),
                     mode_->velocity(), done_steps_);
  }

  void print_header() {
    print_run_header(out_, options_, run_, source_.kind == DataSource::Kind::fashion_mnist);
    if (options_.resume)
      out_ << "# resumed from " << checkpoint_path(options_.checkpoint_dir, checkpoint_part_) << " at step "
           << done_steps_ << "\n";
  }

  // The epoch's steps, its summary (printed and written), then its checkpoint.
  void train_epoch(size_t epoch) {
    EpochSummary summary;
    summary.epoch = epoch + 1;
    const size_t first_step = done_steps_ - epoch * steps_per_epoch_;  // > 0 only in a resumed epoch
    summary.steps = std::min(steps_per_epoch_ - first_step, total_steps_ - done_steps_);
    EpochSteps steps(summary.steps);
    for (size_t step = 0; step < summary.steps; ++step) train_step(epoch, first_step, step, summary, steps);
    mode_->finish_steps();
    add_epoch_losses(steps, summary);
    add_epoch_times(epoch, steps, summary);
    progress_.clear();
    if (options_.evaluate) evaluate_epoch(summary);
    print_epoch_line(out_, summary);
    run_sums_ = run_sums_ + steps.sums;
    run_wall_s_ += steps.wall_s;
    run_samples_ += steps.timed_samples;
    run_.timed_steps += summary.timed_steps;
    run_.epoch_summaries.push_back(summary);
    writer_->write(epoch_record(options_, run_, summary, argv_));
    save_checkpoint();
  }

  // --trace: the ranks' clocks start together, after a barrier; only training steps are traced.
  void start_trace() {
    if (options_.trace_path.empty()) return;
    trace_ = std::make_unique<TraceRecorder>(rank_, comm_ ? comm_->size() : 1, /*schedule_steps=*/false);
    if (comm_) comm_->barrier();
    trace_->align();
  }

  // Step `step` of the epoch's `summary.steps`, which begin at the epoch's step `first_step`.
  void train_step(size_t epoch, size_t first_step, size_t step, const EpochSummary& summary, EpochSteps& steps) {
    const ActiveTrace tracing(trace_.get());
    const size_t first_event = trace_ ? trace_->events().size() : 0;
    const double start_us = trace_ ? trace_->now_us() : 0;
    const auto start = Clock::now();
    BatchInfo info;
    {
      const TraceSpan span("compute", "load");
      info = loader_->load(epoch, first_step + step, images_.data(), labels_.data());
    }
    const auto loaded = Clock::now();
    const StepResult result = mode_->train_step({images_.data(), labels_.data(), info.local_size, info.global_size});
    const auto end = Clock::now();
    if (trace_) {
      // What no compute or communication span covers is the step's idle time, as the records count it.
      const double end_us = trace_->now_us();
      trace_->add_gaps(first_event, start_us, end_us, "idle", "idle");
      trace_->add("step", "step", start_us, end_us, trace_arg("step", double(done_steps_ + 1)));
    }
    // The process's first step builds the oneDNN primitives (JIT) and connects the peers: a
    // warm-up, left out of the rates unless it is the only step (as benchmarks skip warm-up
    // iterations; it trains like every other step).
    if (run_.steps == 0 && step == 0 && summary.steps > 1) {
      run_.first_step_s = seconds(start, end);
      if (options_.profile_layers) mode_->local_model().set_profile(&profile_);  // from zero
    } else {
      steps.sums = steps.sums + PhaseTimes{seconds(start, loaded), result.forward_s, result.backward_s, result.update_s,
                                           result.comm_s};
      steps.wall_s += seconds(start, end);
      step_times_us_.push_back(seconds(start, end) * 1e6);
      ++steps.timed_steps;
      steps.timed_samples += info.global_size;
    }
    if (!std::isfinite(result.loss_sum))
      throw Error("the loss diverged to " + std::to_string(result.loss_sum) + " at epoch " + std::to_string(epoch + 1) +
                  " step " + std::to_string(first_step + step + 1) + " (try a smaller --lr)");
    steps.local[2 * step] = result.loss_sum;
    steps.local[2 * step + 1] = double(result.correct);
    steps.global_sizes[step] = double(result.loss_samples.value_or(info.global_size));
    ++done_steps_;
    if (progress_.enabled()) {
      char text[160];
      std::snprintf(text, sizeof text, "step %zu/%zu  loss %.4f (rank 0's share)  %.1f ms/step", done_steps_,
                    total_steps_, result.loss_sum / double(std::max<size_t>(info.local_size, 1)),
                    seconds(start, end) * 1e3);
      progress_.show(text, double(done_steps_) / double(total_steps_));
    }
    // Mid-epoch checkpoints (the end of the epoch writes one in any case).
    if (options_.checkpoint_every > 0 && done_steps_ % options_.checkpoint_every == 0 && step + 1 < summary.steps)
      save_checkpoint();
    maybe_inject_fault(rank_, done_steps_, "CCLAB_FAULT_AFTER_STEPS");
  }

  // Every step's global mean loss, from the shares of every rank, and the epoch's means.
  void add_epoch_losses(const EpochSteps& steps, EpochSummary& summary) {
    const std::vector<double> global = sum_shares(comm_, steps.local);
    double loss_sum = 0, correct = 0;
    for (size_t step = 0; step < summary.steps; ++step) {
      const double mean_loss = global[2 * step] / steps.global_sizes[step];
      run_.step_losses.push_back(mean_loss);
      loss_sum += mean_loss;
      correct += global[2 * step + 1];
      summary.samples += size_t(steps.global_sizes[step]);
      run_.last_step_loss = mean_loss;
    }
    run_.steps += summary.steps;
    summary.train_loss = loss_sum / double(summary.steps);
    summary.train_accuracy = correct / double(summary.samples);
  }

  void add_epoch_times(size_t epoch, const EpochSteps& steps, EpochSummary& summary) const {
    summary.timed_steps = steps.timed_steps;
    summary.time_s = steps.wall_s + (epoch == first_epoch_ ? run_.first_step_s : 0.0);
    summary.images_per_s = double(steps.timed_samples) / steps.wall_s;
    summary.phases = steps.sums / double(summary.timed_steps);
    summary.step_time = step_time(steps.sums, steps.wall_s, summary.timed_steps);
  }

  void evaluate_epoch(EpochSummary& summary) {
    const auto start = Clock::now();
    summary.test = evaluate_mode(*mode_, comm_, *data_.test, options_.batch);
    run_.eval_time_s += seconds(start, Clock::now());
  }

  // This rank's means over the run's timed steps, and the final parameters' sums over ranks.
  void summarise_run() {
    run_.epochs = double(run_.steps) / double(steps_per_epoch_);
    run_.final_loss = run_.epoch_summaries.back().train_loss;
    run_.test = run_.epoch_summaries.back().test;
    run_.train_time_s = run_wall_s_;
    run_.images_per_s = double(run_samples_) / run_wall_s_;
    run_.phases = run_sums_ / double(run_.timed_steps);
    run_.step_time = step_time(run_sums_, run_wall_s_, run_.timed_steps);
    const auto [parameter_sum, parameter_abs_sum] = mode_->parameter_sums();
    const std::vector<double> sums = sum_shares(comm_, {parameter_sum, parameter_abs_sum});
    run_.parameter_sum = sums[0];
    run_.parameter_abs_sum = sums[1];
  }

  // This rank's step time and traffic per step, indexed by RankFigure.
  std::vector<double> rank_figures() const {
    const double steps = double(run_.steps);
    const ModeTraffic traffic = mode_->traffic();
    const PhaseCounts predicted = mode_->predicted_sent_bytes();
    std::vector<double> mine(kFigures);
    mine[kTotal] = run_.step_time.total_s;
    mine[kCompute] = run_.step_time.compute_s;
    mine[kComm] = run_.step_time.comm_s;
    mine[kIdle] = run_.step_time.idle_s;
    mine[kTrainTime] = run_.train_time_s;
    mine[kFirstStep] = run_.first_step_s;
    mine[kMemory] = double(thread_buffer_bytes() - buffers_before_mode_) + double(mode_->registered_bytes());
    const auto per_step = [&](const PhaseCounts& counts, RankFigure first) {
      for (size_t phase = 0; phase < PhaseCounts::kPhases; ++phase) mine[first + phase] = counts.at(phase) / steps;
    };
    per_step(traffic.bytes_sent, kSentByPhase);
    per_step(predicted, kPredictedByPhase);
    per_step(mode_->textbook_sent_bytes(), kTextbookByPhase);
    per_step(traffic.messages_sent, kMessagesByPhase);
    mine[kSentTotal] = traffic.bytes_sent.total() / steps;
    mine[kPredictedTotal] = predicted.total() / steps;
    mine[kReceived] = traffic.bytes_received / steps;
    mine[kMessagesReceived] = traffic.messages_received / steps;
    return mine;
  }

  // The slowest rank sets the pace and the busiest one the traffic: the step-time split of the
  // slowest rank (largest mean step time) and the maxima of the bytes.
  void take_figures_over_ranks() {
    const std::vector<double> mine = rank_figures();
    const std::vector<std::vector<double>> all =
        comm_ ? gather_over_ranks(*comm_, mine) : std::vector<std::vector<double>>{mine};
    std::vector<double> most(mine.size(), 0.0);
    size_t slowest = 0;
    for (size_t r = 0; r < all.size(); ++r) {
      if (all[r][kTotal] > all[slowest][kTotal]) slowest = r;
      for (size_t i = 0; i < mine.size(); ++i) most[i] = std::max(most[i], all[r][i]);
    }
    run_.step_time = {all[slowest][kCompute], all[slowest][kComm], all[slowest][kIdle], all[slowest][kTotal]};
    // Each step lasts as long as its slowest rank (every rank times the same steps).
    std::vector<double> slowest_steps = step_times_us_;
    if (comm_)
      for (const std::vector<double>& theirs : gather_over_ranks(*comm_, step_times_us_))
        for (size_t i = 0; i < slowest_steps.size(); ++i) slowest_steps[i] = std::max(slowest_steps[i], theirs[i]);
    run_.step_samples_us = samples_for_record(slowest_steps);
    for (size_t phase = 0; phase < PhaseCounts::kPhases; ++phase)
      run_.traffic.at(phase) = {most[kSentByPhase + phase], most[kPredictedByPhase + phase],
                                     most[kMessagesByPhase + phase], most[kTextbookByPhase + phase]};
    if (comm_ && options_.mode == "ps") {  // every rank takes part, server or not
      const Staleness mine_applied = mode_->staleness().value_or(Staleness{});
      Staleness over_ranks;
      double sum = 0;
      for (const auto& theirs : gather_over_ranks(
               *comm_, {mine_applied.mean * double(mine_applied.pushes), double(mine_applied.pushes), mine_applied.max})) {
        sum += theirs[0];
        over_ranks.pushes += size_t(theirs[1]);
        over_ranks.max = std::max(over_ranks.max, theirs[2]);
      }
      over_ranks.mean = over_ranks.pushes ? sum / double(over_ranks.pushes) : 0;
      run_.staleness = over_ranks;
    }
    run_.mode_record = mode_->mode_record();
    run_.received_bytes_per_rank = most[kReceived];
    run_.received_messages_per_rank = most[kMessagesReceived];
    run_.train_time_s = most[kTrainTime];
    run_.first_step_s = most[kFirstStep];
    run_.memory_bytes_per_rank = most[kMemory];
    // The busiest rank's whole step (phases peak on different ranks in a pipeline: not their sum).
    run_.sent_bytes_per_rank = most[kSentTotal];
    run_.predicted_sent_bytes_per_rank = most[kPredictedTotal];
    run_.images_per_s = double(run_samples_) / run_.train_time_s;
  }

  void report() {
    writer_->write(train_record(options_, run_, argv_));
    if (options_.profile_layers) print_layer_profile(out_, mode_->local_model(), profile_, run_.timed_steps);
    if (!options_.profile_layers_path.empty() && rank_ == 0)
      save_layer_times(options_.profile_layers_path, layer_times_of(mode_->local_model(), profile_, run_.timed_steps,
                                                                    options_.model, options_.batch, run_.threads,
                                                                    run_.phases.update_s, run_.phases.data_s));
    print_summary(out_, options_, run_);
  }

  const TrainOptions options_;
  const std::vector<std::string>& argv_;
  Comm* const comm_;
  const int rank_;
  NullBuffer null_buffer_;
  std::ostream null_stream_;
  std::ostream& out_;
  ProgressLine progress_;  // step, loss, time per step and ETA on a terminal
  TrainSummary run_;
  DataSource source_;
  std::optional<ResultWriter> writer_;
  DataSplits data_;
  // The run's compute device (compute_device.h) while the run lasts; the host again after it.
  struct DeviceInstalled {
    explicit DeviceInstalled(std::shared_ptr<ComputeDevice> device) { use_compute_device(std::move(device)); }
    ~DeviceInstalled() { use_compute_device(nullptr); }
    DeviceInstalled(const DeviceInstalled&) = delete;
    DeviceInstalled& operator=(const DeviceInstalled&) = delete;
  };
  std::optional<DeviceInstalled> device_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<ParallelMode> mode_;
  LayerProfile profile_;
  std::optional<BatchLoader> loader_;
  FloatBuffer images_;
  std::vector<int32_t> labels_;
  std::unique_ptr<TraceRecorder> trace_;  // --trace
  std::vector<double> step_times_us_;     // of every timed step, for the record's samples
  int64_t buffers_before_mode_ = 0;       // thread_buffer_bytes() when the mode was built
  size_t steps_per_epoch_ = 0, total_steps_ = 0, epochs_ = 0, first_epoch_ = 0;
  CheckpointHeader checkpoint_header_;
  int checkpoint_part_ = -1;
  size_t done_steps_ = 0;  // global steps done, including those before a resume
  PhaseTimes run_sums_;
  double run_wall_s_ = 0;
  size_t run_samples_ = 0;
};

TrainSummary train_impl(const TrainOptions& requested, const std::vector<std::string>& argv, std::ostream& out,
                        Comm* comm) {
  validate(requested);
  return TrainingRun(with_checkpoint_layout(requested, comm ? comm->rank() : 0), argv, out, comm).train();
}

}  // namespace

std::pair<int, std::string> resolve_compute_threads(int requested) {
  if (requested > 0) return {requested, "--threads"};
  if (int threads = positive_env("CCLAB_THREADS")) return {threads, "CCLAB_THREADS"};
  if (int threads = positive_env("OMP_NUM_THREADS")) return {threads, "OMP_NUM_THREADS"};
  return {std::max(1, this_rank_placement().threads), "cpus available"};
}

TrainSummary train_single_process(const TrainOptions& options, const std::vector<std::string>& argv,
                                  std::ostream& out) {
  if (options.grid.ranks() != 1) throw UsageError("train_single_process runs one rank");
  return train_impl(options, argv, out, nullptr);
}

TrainSummary train_parallel(Comm& comm, const TrainOptions& options, const std::vector<std::string>& argv,
                            std::ostream& out) {
  if (options.grid.ranks() != comm.size())
    throw UsageError("the grid dp=" + std::to_string(options.grid.dp) + ",tp=" + std::to_string(options.grid.tp) +
                     ",pp=" + std::to_string(options.grid.pp) + " has " + std::to_string(options.grid.ranks()) +
                     " ranks, the job " + std::to_string(comm.size()));
  return train_impl(options, argv, out, &comm);
}

}  // namespace cclab::train
