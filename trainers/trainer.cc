#include "trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "backends/onednn/onednn_backend.h"
#include "checkpoint.h"
#include "cclab/algorithm.h"
#include "cclab/comm.h"
#include "cclab/error.h"
#include "cclab/host_executor.h"
#include "cclab/launch.h"
#include "cclab/simulator.h"
#include "data/loader.h"
#include "model/loss.h"
#include "model/optimizer.h"
#include "report.h"
#include "results.h"

namespace cclab::train {
namespace {

using Clock = std::chrono::steady_clock;
double seconds(Clock::time_point from, Clock::time_point to) { return std::chrono::duration<double>(to - from).count(); }

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
  if (options.eval_batch == 0) throw UsageError("the evaluation batch must be at least 1");
  if (options.mode != "data") throw UsageError("not implemented yet: --mode " + options.mode);
  if (options.bucket_bytes < 4) throw UsageError("--bucket-mb must hold at least one float");
  if (options.resume && options.checkpoint_dir.empty()) throw UsageError("--resume needs --checkpoint-dir");
  if (options.checkpoint_every > 0 && options.checkpoint_dir.empty())
    throw UsageError("--checkpoint-every needs --checkpoint-dir");
}

PhaseTimes operator+(const PhaseTimes& a, const PhaseTimes& b) {
  return {a.data_s + b.data_s, a.forward_s + b.forward_s, a.backward_s + b.backward_s, a.update_s + b.update_s,
          a.grad_sync_s + b.grad_sync_s};
}
PhaseTimes operator/(const PhaseTimes& a, double n) {
  return {a.data_s / n, a.forward_s / n, a.backward_s / n, a.update_s / n, a.grad_sync_s / n};
}

// Mean step time from the summed phase times and wall time of `steps` steps (DESIGN 3.6):
//   compute = data loading + forward + backward + update (backward without the time its gradient
//             hook spends in the transport);
//   comm    = grad_sync_s: time this rank's thread spends inside transport work that does not overlap
//             compute: starting bucket allreduces and polling them from the hook during backward
//             (one thread does both, so that time is taken from backward);
//   idle    = the rest of the wall time: mainly waiting after backward ended for the buckets still
//             in flight (peers that are behind, the last buckets' transfers and reductions).
StepTime step_time(const PhaseTimes& sums, double wall_s, size_t steps) {
  StepTime time;
  const double n = double(steps);
  time.total_s = wall_s / n;
  time.compute_s = (sums.data_s + sums.forward_s + sums.backward_s + sums.update_s) / n;
  time.comm_s = sums.grad_sync_s / n;
  time.idle_s = std::max(0.0, time.total_s - time.compute_s - time.comm_s);
  return time;
}

// DDP's gradient buckets. Layers' parameter runs are grouped, in backward order (= increasing offset
// of the flat buffer, parameters.h), into buckets of at least `bucket_bytes` (a layer is never
// split, as in PyTorch DDP; the last bucket takes what is left). Every rank computes the same
// boundaries from the same model, and starts the buckets in the same order, so the sequence
// numbers from Comm::next_sequence() match. During backward the hook advances a watermark; each
// bucket whose end it passed starts its in-place ring allreduce (sum: the loss is normalised by the
// global batch, so the sum over ranks is the single-process gradient), and every call in flight is
// polled once per hook. finish() waits for the rest.
class GradientBuckets {
 public:
  GradientBuckets(Comm& comm, ParameterStore& store, size_t bucket_bytes) : comm_(comm), executor_(comm.transport()) {
    const Algorithm* ring = find_algorithm(Collective::allreduce, "ring");
    if (!ring) throw Error("this build has no ring allreduce");
    size_t start = 0, end = 0;
    const auto close = [&] {
      if (end == start) return;
      Bucket bucket;
      bucket.offset = start;
      bucket.count = end - start;
      CollectiveArgs args;
      args.collective = Collective::allreduce;
      args.count = bucket.count;
      args.dtype = DataType::f32;
      args.op = ReduceOp::sum;
      args.inplace = true;
      bucket.schedule = std::make_unique<CompiledSchedule>(ring->build(comm.topology(), comm.rank(), args));
      bucket.predicted_sent = predict_traffic(*ring, comm.topology(), args).max_bytes_sent;
      buckets_.push_back(std::move(bucket));
      start = end;
    };
    for (const ParameterRange& range : store.backward_order()) {
      if (range.offset != end) throw Error("parameter ranges are not contiguous in backward order");
      end = range.offset + range.count;
      if ((end - start) * sizeof(float) >= bucket_bytes) close();
    }
    close();
    gradients_ = store.gradients().data();
  }

  size_t size() const { return buckets_.size(); }
  double predicted_sent_bytes() const {
    double bytes = 0;
    for (const Bucket& bucket : buckets_) bytes += double(bucket.predicted_sent);
    return bytes;
  }

  void begin_step() {
    watermark_ = 0;
    next_ = 0;
    comm_s_ = 0;
  }

  // The hook: gradients [0, range.offset + range.count) are final.
  void ready(const ParameterRange& range) {
    const auto start = Clock::now();
    watermark_ = std::max(watermark_, range.offset + range.count);
    while (next_ < buckets_.size() && buckets_[next_].offset + buckets_[next_].count <= watermark_) {
      Bucket& bucket = buckets_[next_++];
      float* data = gradients_ + bucket.offset;
      bucket.call = executor_.start(*bucket.schedule, {data, data}, DataType::f32, ReduceOp::sum, comm_.next_sequence());
    }
    for (size_t i = 0; i < next_; ++i)
      if (buckets_[i].call && !buckets_[i].call->done()) buckets_[i].call->test();
    comm_s_ += seconds(start, Clock::now());
  }

  // After backward: starts what is left (none, when the hook saw every layer) and waits for all.
  void finish() {
    const double hook_s = comm_s_;  // time from here on is idle, not the hook's
    ready({0, buckets_.empty() ? 0 : buckets_.back().offset + buckets_.back().count, 0});
    comm_s_ = hook_s;
    const Deadline deadline = Deadline::after(comm_.timeout_s());
    for (Bucket& bucket : buckets_) {
      bucket.call->wait(deadline);
      bucket.call.reset();
    }
  }

  double comm_s() const { return comm_s_; }

 private:
  struct Bucket {
    size_t offset = 0, count = 0;
    size_t predicted_sent = 0;
    std::unique_ptr<CompiledSchedule> schedule;
    std::unique_ptr<PendingCollective> call;
  };
  Comm& comm_;
  HostExecutor executor_;
  std::vector<Bucket> buckets_;
  float* gradients_ = nullptr;
  size_t watermark_ = 0, next_ = 0;
  double comm_s_ = 0;
};

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

class NullBuffer : public std::streambuf {
 protected:
  int overflow(int c) override { return c; }
};

TrainSummary train_impl(const TrainOptions& options, const std::vector<std::string>& argv, std::ostream& out_stream,
                        Comm* comm);

}  // namespace

std::pair<int, std::string> resolve_compute_threads(int requested) {
  if (requested > 0) return {requested, "--threads"};
  if (int threads = positive_env("CCLAB_THREADS")) return {threads, "CCLAB_THREADS"};
  if (int threads = positive_env("OMP_NUM_THREADS")) return {threads, "OMP_NUM_THREADS"};
  return {std::max(1, this_rank_placement().threads), "cpus available"};
}

Evaluation evaluate(Model& model, const Dataset& dataset, size_t batch) {
  const size_t classes = model.output_shape().elements();
  Activations activations(model, std::min(batch, dataset.size()));
  BatchLoader loader(dataset, activations.max_batch(), 0, false);
  std::vector<int32_t> labels(activations.max_batch());
  double loss = 0;
  size_t correct = 0;
  for (size_t step = 0; step < loader.steps_per_epoch(); ++step) {
    const BatchInfo info = loader.load(0, step, activations.input(), labels.data());
    model.forward(activations, info.local_size, false);
    const LossResult result =
        softmax_cross_entropy(activations.output(), labels.data(), info.local_size, classes, nullptr, 1.0);
    loss += result.loss_sum;
    correct += result.correct;
  }
  return {loss / double(dataset.size()), double(correct) / double(dataset.size())};
}

TrainSummary train_single_process(const TrainOptions& options, const std::vector<std::string>& argv,
                                  std::ostream& out) {
  if (options.grid.ranks() != 1) throw UsageError("train_single_process runs one rank");
  return train_impl(options, argv, out, nullptr);
}

TrainSummary train_data_parallel(Comm& comm, const TrainOptions& options, const std::vector<std::string>& argv,
                                 std::ostream& out) {
  if (options.grid.dp != comm.size() || options.grid.tp != 1 || options.grid.pp != 1)
    throw UsageError("data mode needs a grid of dp = " + std::to_string(comm.size()) + " ranks");
  return train_impl(options, argv, out, &comm);
}

namespace {

TrainSummary train_impl(const TrainOptions& options, const std::vector<std::string>& argv, std::ostream& out_stream,
                        Comm* comm) {
  validate(options);
  const int rank = comm ? comm->rank() : 0;
  const int ranks = comm ? comm->size() : 1;
  if (options.batch < size_t(ranks))
    throw UsageError("--batch " + std::to_string(options.batch) + " is smaller than the " + std::to_string(ranks) +
                     " ranks: every rank needs at least one sample per step");
  NullBuffer null_buffer;
  std::ostream null_stream(&null_buffer);
  std::ostream& out = rank == 0 ? out_stream : null_stream;
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
  Model model(run.plan.layers, backend, options.seed);
  run.parameters = model.parameters().size();
  LayerProfile profile;
  if (options.profile_layers) model.set_profile(&profile);
  SgdMomentum optimizer(model.parameters().size(), float(options.learning_rate), float(options.momentum));
  BatchLoader loader(*data.train, options.batch, options.seed, true, Shard{size_t(rank), size_t(ranks)});
  std::unique_ptr<GradientBuckets> buckets;
  if (comm && ranks > 1) {
    buckets = std::make_unique<GradientBuckets>(*comm, model.parameters(), options.bucket_bytes);
    run.buckets = buckets->size();
  }
  BackwardOptions backward_options;
  if (buckets) backward_options.on_gradients_ready = [&buckets](const ParameterRange& range) { buckets->ready(range); };
  const auto bytes_sent = [&] { return comm ? double(comm->transport().counters().total_bytes_sent()) : 0.0; };
  const auto bytes_received = [&] { return comm ? double(comm->transport().counters().total_bytes_received()) : 0.0; };
  double forward_sent = 0, sync_sent = 0, sync_received = 0;
  Activations activations(model, loader.max_local_batch());
  std::vector<int32_t> labels(loader.max_local_batch());

  const size_t steps_per_epoch = loader.steps_per_epoch();
  const size_t total_steps = options.steps > 0 ? options.steps : options.epochs * steps_per_epoch;
  const size_t epochs = (total_steps + steps_per_epoch - 1) / steps_per_epoch;

  // Checkpoints: the state is parameters, momentum and the global step count (data order and
  // initial weights are pure functions of the seed and epoch).
  CheckpointHeader checkpoint_header;
  checkpoint_header.model = options.model;
  checkpoint_header.data = options.data;
  checkpoint_header.mode = options.mode;
  checkpoint_header.parameters = model.parameters().size();
  checkpoint_header.ranks = uint64_t(ranks);
  checkpoint_header.global_batch = options.batch;
  checkpoint_header.seed = options.seed;
  checkpoint_header.learning_rate = options.learning_rate;
  checkpoint_header.momentum = options.momentum;
  size_t done_steps = 0;  // global steps done, including those before a resume
  if (options.resume) {
    CheckpointState state = read_checkpoint(options.checkpoint_dir, checkpoint_header);
    if (state.steps >= total_steps)
      throw UsageError("cannot resume from checkpoint " + checkpoint_path(options.checkpoint_dir) + ": it is at step " +
                       std::to_string(state.steps) + ", this run ends at step " + std::to_string(total_steps));
    std::copy(state.parameters.begin(), state.parameters.end(), model.parameters().values().begin());
    std::copy(state.velocity.begin(), state.velocity.end(), optimizer.velocity().begin());
    done_steps = state.steps;
  }
  const size_t first_epoch = done_steps / steps_per_epoch;
  const auto save_checkpoint = [&] {
    if (rank == 0 && !options.checkpoint_dir.empty())
      write_checkpoint(options.checkpoint_dir, checkpoint_header, model.parameters().values(), optimizer.velocity(),
                       done_steps);
  };
  print_run_header(out, options, run, source.kind == DataSource::Kind::fashion_mnist);
  if (options.resume)
    out << "# resumed from " << checkpoint_path(options.checkpoint_dir) << " at step " << done_steps << "\n";

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
    // This rank's loss sums and correct counts per step; summed over ranks after the epoch (bootstrap
    // traffic outside the timed steps), which gives the global batch's mean loss of every step.
    std::vector<double> local(2 * summary.steps, 0.0), global_sizes(summary.steps, 0.0);
    for (size_t step = 0; step < summary.steps; ++step) {
      const auto start = Clock::now();
      const BatchInfo info = loader.load(epoch, first_step + step, activations.input(), labels.data());
      const auto loaded = Clock::now();
      const double sent_before_forward = bytes_sent();
      LossResult loss;
      if (info.local_size > 0) {
        model.forward(activations, info.local_size, true);
        loss = softmax_cross_entropy(activations.output(), labels.data(), info.local_size, classes,
                                     activations.output_gradient(), double(info.global_size));
      }
      const auto forwarded = Clock::now();
      const double sent_before_sync = bytes_sent(), received_before_sync = bytes_received();
      forward_sent += sent_before_sync - sent_before_forward;
      if (buckets) buckets->begin_step();
      if (info.local_size > 0) {
        model.backward(activations, info.local_size, backward_options);
      } else {  // an empty shard (the last, partial batch of an epoch): contributes zero gradients
        model.parameters().zero_gradients();
        if (buckets)
          for (const ParameterRange& range : model.parameters().backward_order()) buckets->ready(range);
      }
      const auto backwarded = Clock::now();
      if (buckets) buckets->finish();
      const auto synced = Clock::now();
      sync_sent += bytes_sent() - sent_before_sync;
      sync_received += bytes_received() - received_before_sync;
      optimizer.step(model.parameters());
      const auto end = Clock::now();
      const double hook_s = buckets ? buckets->comm_s() : 0.0;
      // The wait in finish() is in no phase: step_time() counts it as idle.
      sums = sums + PhaseTimes{seconds(start, loaded), seconds(loaded, forwarded),
                               seconds(forwarded, backwarded) - hook_s, seconds(synced, end), hook_s};
      wall_s += seconds(start, end);
      if (!std::isfinite(loss.loss_sum))
        throw Error("the loss diverged to " + std::to_string(loss.loss_sum) + " at epoch " +
                    std::to_string(epoch + 1) + " step " + std::to_string(first_step + step + 1) +
                    " (try a smaller --lr)");
      local[2 * step] = loss.loss_sum;
      local[2 * step + 1] = double(loss.correct);
      global_sizes[step] = double(info.global_size);
      ++done_steps;
      // Mid-epoch checkpoints (the end of the epoch writes one below in any case).
      if (options.checkpoint_every > 0 && done_steps % options.checkpoint_every == 0 && step + 1 < summary.steps)
        save_checkpoint();
    }
    const std::vector<double> global = comm ? sum_over_ranks(*comm, local) : local;
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
    summary.time_s = wall_s;
    summary.images_per_s = double(summary.samples) / wall_s;
    summary.phases = sums / double(summary.steps);
    summary.step_time = step_time(sums, wall_s, summary.steps);
    if (options.evaluate && rank == 0) {  // every rank holds the same parameters
      const auto start = Clock::now();
      summary.test = evaluate(model, *data.test, options.eval_batch);
      run.eval_time_s += seconds(start, Clock::now());
    }
    print_epoch_line(out, summary);
    run_sums = run_sums + sums;
    run_wall_s += wall_s;
    run_samples += summary.samples;
    run.epoch_summaries.push_back(summary);
    writer.write(epoch_record(options, run, summary, argv));
    save_checkpoint();
  }

  run.epochs = double(run.steps) / double(steps_per_epoch);
  run.final_loss = run.epoch_summaries.back().train_loss;
  run.test = run.epoch_summaries.back().test;
  run.train_time_s = run_wall_s;
  run.images_per_s = double(run_samples) / run_wall_s;
  run.phases = run_sums / double(run.steps);
  run.step_time = step_time(run_sums, run_wall_s, run.steps);
  for (float value : model.parameters().values()) {
    run.parameter_sum += value;
    run.parameter_abs_sum += std::fabs(value);
  }
  const double steps = double(run.steps);
  run.traffic.forward.sent_bytes_per_rank = forward_sent / steps;
  run.traffic.backward.sent_bytes_per_rank = 0;  // bucket traffic during backward is grad_sync's
  run.traffic.grad_sync.sent_bytes_per_rank = sync_sent / steps;
  run.received_bytes_per_rank = sync_received / steps;
  run.traffic.grad_sync.predicted_sent_bytes_per_rank = buckets ? buckets->predicted_sent_bytes() : 0.0;
  if (comm && ranks > 1) {
    // The slowest rank sets the pace and the busiest one the traffic: report maxima over ranks.
    // Step time: the split of the slowest rank (largest mean step time). Bytes: maxima over ranks.
    const auto all = gather_over_ranks(
        *comm, {run.step_time.total_s, run.step_time.compute_s, run.step_time.comm_s, run.step_time.idle_s,
                run.traffic.forward.sent_bytes_per_rank, run.traffic.grad_sync.sent_bytes_per_rank,
                run.received_bytes_per_rank, run.train_time_s});
    size_t slowest = 0;
    for (size_t r = 0; r < all.size(); ++r) {
      if (all[r][0] > all[slowest][0]) slowest = r;
      run.traffic.forward.sent_bytes_per_rank = std::max(run.traffic.forward.sent_bytes_per_rank, all[r][4]);
      run.traffic.grad_sync.sent_bytes_per_rank = std::max(run.traffic.grad_sync.sent_bytes_per_rank, all[r][5]);
      run.received_bytes_per_rank = std::max(run.received_bytes_per_rank, all[r][6]);
      run.train_time_s = std::max(run.train_time_s, all[r][7]);
    }
    run.step_time = {all[slowest][1], all[slowest][2], all[slowest][3], all[slowest][0]};
    run.images_per_s = double(run_samples) / run.train_time_s;
  }
  writer.write(train_record(options, run, argv));
  if (options.profile_layers) print_layer_profile(out, model, profile, run.steps);
  print_summary(out, options, run);
  return run;
}

}  // namespace

}  // namespace cclab::train
