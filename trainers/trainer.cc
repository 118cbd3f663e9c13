#include "trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "backends/onednn/onednn_backend.h"
#include "cclab/comm.h"
#include "cclab/error.h"
#include "cclab/launch.h"
#include "cclab/test_fault.h"
#include "checkpoint.h"
#include "data/loader.h"
#include "model/loss.h"
#include "modes/mode.h"
#include "report.h"
#include "results.h"

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
  if (options.mode != "data" && options.mode != "tensor" && options.mode != "pipeline" && options.mode != "hybrid")
    throw UsageError("unknown --mode '" + options.mode + "' (data, tensor, pipeline, hybrid)");
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

TrainSummary train_impl(const TrainOptions& requested, const std::vector<std::string>& argv, std::ostream& out_stream,
                        Comm* comm) {
  validate(requested);
  const TrainOptions options = with_checkpoint_layout(requested, comm ? comm->rank() : 0);
  const int rank = comm ? comm->rank() : 0;
  const int ranks = comm ? comm->size() : 1;
  NullBuffer null_buffer;
  std::ostream null_stream(&null_buffer);
  std::ostream& out = rank == 0 ? out_stream : null_stream;
  if (options.batch < size_t(options.grid.dp))
    throw UsageError("--batch " + std::to_string(options.batch) + " is smaller than the " +
                     std::to_string(options.grid.dp) + " data-parallel ranks: every one needs a sample per step");
  const DataSource source = parse_data_source(options.data, options.data_directory);
  TrainSummary run;
  run.plan = plan_model(options.model, source.shape);
  const size_t classes = run.plan.output().elements();
  if (source.kind == DataSource::Kind::fashion_mnist && classes != 10)
    throw UsageError("the model ends in " + std::to_string(classes) + " outputs but fashion-mnist has 10 classes");
  ResultWriter writer(rank == 0 ? options.json_path : std::string());  // fail early on an unwritable file
  std::tie(run.threads, run.threads_source) = resolve_compute_threads(options.threads);
  set_compute_threads(run.threads);

  const DataSplits data = open_data(source, classes, options.seed);
  run.train_description = data.train->description();
  run.test_description = data.test->description();
  OnednnBackend backend;
  std::unique_ptr<ParallelMode> mode = make_mode(comm, options, run.plan, backend);
  run.parameters = run.plan.parameter_count();
  run.buckets = mode->buckets();
  run.grad_sync_path = mode->grad_sync_path();
  run.split = mode->describe();
  LayerProfile profile;
  if (options.profile_layers) mode->local_model().set_profile(&profile);
  BatchLoader loader(*data.train, options.batch, options.seed, true, mode->shard());
  std::vector<float> images(loader.max_local_batch() * data.train->sample_shape().elements());
  std::vector<int32_t> labels(loader.max_local_batch());

  const size_t steps_per_epoch = loader.steps_per_epoch();
  const size_t total_steps = options.steps > 0 ? options.steps : options.epochs * steps_per_epoch;
  const size_t epochs = (total_steps + steps_per_epoch - 1) / steps_per_epoch;

  // Checkpoints: the state is parameters, momentum and the global step count (data order and
  // initial weights are pure functions of the seed and epoch). Replicated modes share one file that
  // rank 0 writes; the others write one file per rank.
  CheckpointHeader checkpoint_header;
  checkpoint_header.model = options.model;
  checkpoint_header.data = options.data;
  checkpoint_header.mode = options.mode;
  checkpoint_header.layout = mode->layout();
  checkpoint_header.parameters = mode->parameters().size();
  checkpoint_header.ranks = uint64_t(ranks);
  checkpoint_header.global_batch = options.batch;
  checkpoint_header.seed = options.seed;
  checkpoint_header.learning_rate = options.learning_rate;
  checkpoint_header.momentum = options.momentum;
  const int checkpoint_part = mode->replicated() ? -1 : rank;
  size_t done_steps = 0;  // global steps done, including those before a resume
  if (options.resume) {
    CheckpointState state = read_checkpoint(options.checkpoint_dir, checkpoint_part, checkpoint_header);
    if (state.steps >= total_steps)
      throw UsageError("cannot resume from checkpoint " + checkpoint_path(options.checkpoint_dir, checkpoint_part) +
                       ": it is at step " + std::to_string(state.steps) + ", this run ends at step " +
                       std::to_string(total_steps));
    std::copy(state.parameters.begin(), state.parameters.end(), mode->parameters().begin());
    std::copy(state.velocity.begin(), state.velocity.end(), mode->velocity().begin());
    done_steps = state.steps;
    // Every part must resume at the same step (a kill between two ranks' writes leaves them apart).
    if (comm && !mode->replicated()) {
      for (const auto& theirs : gather_over_ranks(*comm, {double(done_steps)}))
        if (theirs[0] != double(done_steps))
          throw UsageError("cannot resume: the per-rank checkpoints in " + options.checkpoint_dir +
                           " are at different steps (" + std::to_string(size_t(theirs[0])) + " and " +
                           std::to_string(done_steps) + ")");
    }
  }
  const size_t first_epoch = done_steps / steps_per_epoch;
  const auto save_checkpoint = [&] {
    if (options.checkpoint_dir.empty()) return;
    mode->prepare_checkpoint();
    if (checkpoint_part < 0 && rank != 0) return;
    write_checkpoint(options.checkpoint_dir, checkpoint_part, checkpoint_header, mode->parameters(), mode->velocity(),
                     done_steps);
  };
  print_run_header(out, options, run, source.kind == DataSource::Kind::fashion_mnist);
  if (options.resume)
    out << "# resumed from " << checkpoint_path(options.checkpoint_dir, checkpoint_part) << " at step " << done_steps
        << "\n";

  PhaseTimes run_sums;
  double run_wall_s = 0;
  size_t run_samples = 0;
  for (size_t epoch = first_epoch; epoch < epochs; ++epoch) {
    EpochSummary summary;
    summary.epoch = epoch + 1;
    const size_t first_step = done_steps - epoch * steps_per_epoch;  // > 0 only in a resumed epoch
    summary.steps = std::min(steps_per_epoch - first_step, total_steps - done_steps);
    PhaseTimes sums;
    double wall_s = 0;
    // This rank's share of the loss sums and correct counts per step; summed over ranks after the
    // epoch (outside the timed steps), which gives the global batch's mean loss of every step.
    std::vector<double> local(2 * summary.steps, 0.0), global_sizes(summary.steps, 0.0);
    size_t timed_samples = 0;
    for (size_t step = 0; step < summary.steps; ++step) {
      const auto start = Clock::now();
      const BatchInfo info = loader.load(epoch, first_step + step, images.data(), labels.data());
      const auto loaded = Clock::now();
      const StepResult result = mode->train_step({images.data(), labels.data(), info.local_size, info.global_size});
      const auto end = Clock::now();
      // The process's first step builds the oneDNN primitives (JIT) and connects the peers: a
      // warm-up, left out of the rates unless it is the only step (as benchmarks skip warm-up
      // iterations; it trains like every other step).
      const bool warm_up = run.steps == 0 && step == 0 && summary.steps > 1;
      if (warm_up) {
        run.first_step_s = seconds(start, end);
        if (options.profile_layers) mode->local_model().set_profile(&profile);  // from zero
      } else {
        sums = sums +
               PhaseTimes{seconds(start, loaded), result.forward_s, result.backward_s, result.update_s, result.comm_s};
        wall_s += seconds(start, end);
        ++summary.timed_steps;
        timed_samples += info.global_size;
      }
      if (!std::isfinite(result.loss_sum))
        throw Error("the loss diverged to " + std::to_string(result.loss_sum) + " at epoch " +
                    std::to_string(epoch + 1) + " step " + std::to_string(first_step + step + 1) +
                    " (try a smaller --lr)");
      local[2 * step] = result.loss_sum;
      local[2 * step + 1] = double(result.correct);
      global_sizes[step] = double(info.global_size);
      ++done_steps;
      // Mid-epoch checkpoints (the end of the epoch writes one below in any case).
      if (options.checkpoint_every > 0 && done_steps % options.checkpoint_every == 0 && step + 1 < summary.steps)
        save_checkpoint();
      maybe_inject_fault(rank, done_steps, "CCLAB_FAULT_AFTER_STEPS");
    }
    const std::vector<double> global = sum_shares(comm, local);
    double loss_sum = 0, correct = 0;
    for (size_t step = 0; step < summary.steps; ++step) {
      const double mean_loss = global[2 * step] / global_sizes[step];
      run.step_losses.push_back(mean_loss);
      loss_sum += mean_loss;
      correct += global[2 * step + 1];
      summary.samples += size_t(global_sizes[step]);
      run.last_step_loss = mean_loss;
    }
    run.steps += summary.steps;
    summary.train_loss = loss_sum / double(summary.steps);
    summary.train_accuracy = correct / double(summary.samples);
    summary.time_s = wall_s + (epoch == first_epoch ? run.first_step_s : 0.0);
    summary.images_per_s = double(timed_samples) / wall_s;
    summary.phases = sums / double(summary.timed_steps);
    summary.step_time = step_time(sums, wall_s, summary.timed_steps);
    if (options.evaluate) {
      const auto start = Clock::now();
      summary.test = evaluate_mode(*mode, comm, *data.test, options.batch);
      run.eval_time_s += seconds(start, Clock::now());
    }
    print_epoch_line(out, summary);
    run_sums = run_sums + sums;
    run_wall_s += wall_s;
    run_samples += timed_samples;
    run.timed_steps += summary.timed_steps;
    run.epoch_summaries.push_back(summary);
    writer.write(epoch_record(options, run, summary, argv));
    save_checkpoint();
  }

  run.epochs = double(run.steps) / double(steps_per_epoch);
  run.final_loss = run.epoch_summaries.back().train_loss;
  run.test = run.epoch_summaries.back().test;
  run.train_time_s = run_wall_s;
  run.images_per_s = double(run_samples) / run_wall_s;
  run.phases = run_sums / double(run.timed_steps);
  run.step_time = step_time(run_sums, run_wall_s, run.timed_steps);
  const auto [parameter_sum, parameter_abs_sum] = mode->parameter_sums();
  const std::vector<double> sums = sum_shares(comm, {parameter_sum, parameter_abs_sum});
  run.parameter_sum = sums[0];
  run.parameter_abs_sum = sums[1];
  // Traffic per step: the slowest rank sets the pace and the busiest one the traffic, so report
  // the step-time split of the slowest rank (largest mean step time) and the maxima of the bytes.
  const double steps = double(run.steps);
  const ModeTraffic traffic = mode->traffic();
  const PhaseCounts &sent = traffic.bytes_sent, &messages = traffic.messages_sent;
  const PhaseCounts predicted = mode->predicted_sent_bytes();
  // Every rank's figures, gathered once (bootstrap traffic, after the timed steps).
  enum Field {
    kTotal,
    kCompute,
    kComm,
    kIdle,
    kTrainTime,
    kFirstStep,
    kSentForward,
    kSentBackward,
    kSentSync,
    kSentTotal,
    kPredictedForward,
    kPredictedBackward,
    kPredictedSync,
    kPredictedTotal,
    kMessagesForward,
    kMessagesBackward,
    kMessagesSync,
    kReceived,
    kMessagesReceived,
    kFields
  };
  std::vector<double> mine(kFields);
  mine[kTotal] = run.step_time.total_s;
  mine[kCompute] = run.step_time.compute_s;
  mine[kComm] = run.step_time.comm_s;
  mine[kIdle] = run.step_time.idle_s;
  mine[kTrainTime] = run.train_time_s;
  mine[kFirstStep] = run.first_step_s;
  const auto per_step = [&](const PhaseCounts& counts, Field forward, Field backward, Field sync) {
    mine[forward] = counts.forward / steps;
    mine[backward] = counts.backward / steps;
    mine[sync] = counts.grad_sync / steps;
  };
  per_step(sent, kSentForward, kSentBackward, kSentSync);
  per_step(predicted, kPredictedForward, kPredictedBackward, kPredictedSync);
  per_step(messages, kMessagesForward, kMessagesBackward, kMessagesSync);
  mine[kSentTotal] = sent.total() / steps;
  mine[kPredictedTotal] = predicted.total() / steps;
  mine[kReceived] = traffic.bytes_received / steps;
  mine[kMessagesReceived] = traffic.messages_received / steps;
  const std::vector<std::vector<double>> all =
      comm ? gather_over_ranks(*comm, mine) : std::vector<std::vector<double>>{mine};
  std::vector<double> most(mine.size(), 0.0);
  size_t slowest = 0;
  for (size_t r = 0; r < all.size(); ++r) {
    if (all[r][kTotal] > all[slowest][kTotal]) slowest = r;
    for (size_t i = 0; i < mine.size(); ++i) most[i] = std::max(most[i], all[r][i]);
  }
  run.step_time = {all[slowest][kCompute], all[slowest][kComm], all[slowest][kIdle], all[slowest][kTotal]};
  run.traffic.forward = {most[kSentForward], most[kPredictedForward], most[kMessagesForward]};
  run.traffic.backward = {most[kSentBackward], most[kPredictedBackward], most[kMessagesBackward]};
  run.traffic.grad_sync = {most[kSentSync], most[kPredictedSync], most[kMessagesSync]};
  run.received_bytes_per_rank = most[kReceived];
  run.received_messages_per_rank = most[kMessagesReceived];
  run.train_time_s = most[kTrainTime];
  run.first_step_s = most[kFirstStep];
  // The busiest rank's whole step (phases peak on different ranks in a pipeline: not their sum).
  run.sent_bytes_per_rank = most[kSentTotal];
  run.predicted_sent_bytes_per_rank = most[kPredictedTotal];
  run.images_per_s = double(run_samples) / run.train_time_s;
  writer.write(train_record(options, run, argv));
  if (options.profile_layers) print_layer_profile(out, mode->local_model(), profile, run.timed_steps);
  print_summary(out, options, run);
  return run;
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
