#include "planner/planner.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <tuple>

#include "cclab/error.h"
#include "cclab/simulator.h"
#include "data/loader.h"
#include "model/parameters.h"
#include "modes/gradient_buckets.h"
#include "modes/pipeline_schedule.h"
#include "modes/sharded_gradient_buckets.h"
#include "modes/stage_balance.h"
#include "modes/tensor_split.h"
#include "planner/step_simulation.h"

namespace cclab::train {
namespace {

constexpr size_t kFloat = sizeof(float);
// The pipeline mode's bound on micro-batches per step (its message ids hold 13 bits of them).
constexpr size_t kMostMicroBatches = size_t{1} << 13;

bool has_parameters(const LayerConfig& layer) {
  return layer.kind == LayerKind::convolution || layer.kind == LayerKind::fully_connected;
}

size_t first_fully_connected(const ModelPlan& plan) {
  for (size_t i = 0; i < plan.layers.size(); ++i)
    if (plan.layers[i].kind == LayerKind::fully_connected) return i;
  return plan.layers.size();
}

std::vector<size_t> parameter_counts(const std::vector<LayerConfig>& layers) {
  std::vector<size_t> counts;
  for (const LayerConfig& layer : layers) counts.push_back(layer.parameter_count());
  return counts;
}

size_t shard_size(size_t global, size_t rank, size_t ranks) {
  const auto [begin, end] = BatchLoader::shard_range(global, Shard{rank, ranks});
  return end - begin;
}

// What one simulation of a strategy works out: only the memory its ranks hold (which no cost
// changes), or the whole step with the ranks placed on the cores as placement `core_deal` has them.
struct Pass {
  bool costed = true;
  size_t core_deal = 0;
};

// One step of one strategy under construction: the simulated tasks, and per rank the bytes it
// sends by phase and the bytes it holds.
class StepModel {
 public:
  StepModel(const PlanInputs& inputs, size_t ranks, Pass pass)
      : inputs_(inputs),
        pass_(pass),
        sim_(ranks),
        sent_(ranks),
        memory_(ranks, 0.0),
        topology_(inputs.cluster.topology()),
        total_parameters_(double(inputs.model.parameter_count())),
        compute_speed_(inputs.cluster.compute_speed) {
    for (size_t r = 0; r < ranks; ++r) {
      send_port_.push_back(sim_.add_port());
      receive_port_.push_back(sim_.add_port());
    }
    for (size_t n = 0; n < inputs.cluster.nodes; ++n) network_port_.push_back(sim_.add_port());
    const ClusterShape& cluster = inputs.cluster;
    if (cluster.ranks_share_cores(inputs.layers.threads)) {
      for (size_t node = 0; node < cluster.nodes; ++node) {
        std::vector<size_t> node_cores;
        for (size_t core = 0; core < cluster.cores_per_node; ++core) node_cores.push_back(sim_.add_port());
        for (size_t local = 0; local < cluster.ranks_per_node; ++local) {
          std::vector<size_t> cores;
          for (size_t core : cluster.cores_of(local, inputs.layers.threads, pass.core_deal))
            cores.push_back(node_cores[core]);
          sim_.run_on(node * cluster.ranks_per_node + local, std::move(cores));
        }
      }
    }
  }

  StepSimulation& sim() { return sim_; }
  size_t ranks() const { return sent_.size(); }

  // Seconds of `mine`, a tensor-parallel slice of layer `layer`: the layer's time times the slice's
  // measured ratio, or its share of the layer's work where none was measured.
  double slice_s(size_t layer, bool backward, double samples, const LayerConfig& mine) const {
    const LayerConfig& whole = inputs_.model.layers.at(layer);
    const auto measured = inputs_.slice_time_ratios.find(tensor_slice_key(mine));
    const double fraction = measured != inputs_.slice_time_ratios.end() ? measured->second
                            : has_parameters(whole)
                                ? double(mine.parameter_count()) / double(whole.parameter_count())
                                : double(mine.output().elements()) / double(whole.output().elements());
    return layer_s(layer, backward, samples, fraction);
  }
  // Seconds of layer `layer`'s forward (or backward) on `samples` samples, for a share `fraction`
  // of its work.
  double layer_s(size_t layer, bool backward, double samples, double fraction = 1.0) const {
    const LayerTime& time = inputs_.layers.layers.at(layer);
    return (backward ? time.backward_s : time.forward_s) * samples / double(inputs_.batch) * fraction /
           compute_speed_;
  }
  double layers_s(size_t first, size_t last, bool backward, double samples) const {
    double sum = 0;
    for (size_t layer = first; layer < last; ++layer) sum += layer_s(layer, backward, samples);
    return sum;
  }
  double data_s(double samples) const {
    return inputs_.layers.data_s * samples / double(inputs_.batch) / compute_speed_;
  }
  // A memcpy of `bytes` on a rank's thread, at the profile's copy rate for that size.
  double copy_s(double bytes) const {
    return inputs_.cluster.profile.regime(size_t(bytes)).copy_us_per_byte * bytes * 1e-6;
  }
  double update_s(double parameters) const {
    return inputs_.layers.update_s * parameters / total_parameters_ / compute_speed_;
  }

  // The ring algorithm's (or `algorithm`'s: "direct" where a group reads peers' memory) bytes and
  // time for one call of a ProcessGroup over `members` (as ProcessGroup::compiled builds it:
  // allgather and reduce_scatter count the whole array).
  CollectiveArgs ring_args(Collective collective, size_t count, size_t members) const {
    CollectiveArgs args;
    args.collective = collective;
    args.count = collective == Collective::allreduce ? count : count * members;
    args.dtype = DataType::f32;
    args.op = ReduceOp::sum;
    args.inplace = collective == Collective::allreduce;
    return args;
  }
  Topology group_topology(const std::vector<size_t>& members) const {
    Topology topology;
    for (size_t member : members) topology.node_of_rank.push_back(topology_.node_of_rank.at(member));
    return topology;
  }
  const Algorithm& ring(Collective collective, const std::string& name) const {
    const Algorithm* algorithm = find_algorithm(collective, name);
    if (!algorithm) throw Error("this build has no " + name + " " + std::string(collective_name(collective)));
    return *algorithm;
  }
  double ring_bytes(Collective collective, size_t count, const std::vector<size_t>& members,
                    const std::string& algorithm = "ring") {
    if (members.size() < 2 || !pass_.costed) return 0;
    const auto key = std::make_tuple(int(collective), count, members, algorithm);
    const auto found = bytes_cache_.find(key);
    if (found != bytes_cache_.end()) return found->second;
    const double bytes = double(predict_traffic(ring(collective, algorithm), group_topology(members),
                                                ring_args(collective, count, members.size()))
                                    .max_bytes_sent);
    return bytes_cache_[key] = bytes;
  }
  double ring_s(Collective collective, size_t count, const std::vector<size_t>& members,
                const std::string& algorithm = "ring") {
    if (members.size() < 2 || count == 0 || !pass_.costed) return 0;
    const auto key = std::make_tuple(int(collective), count, members, algorithm);
    const auto found = time_cache_.find(key);
    if (found != time_cache_.end()) return found->second;
    const double seconds =
        predict_time_us(ring(collective, algorithm), group_topology(members),
                        ring_args(collective, count, members.size()), inputs_.cluster.profile) *
        1e-6;
    return time_cache_[key] = seconds;
  }

  // A message of `bytes` from `from` to `to`: its link's alpha-beta time, holding the sender's
  // send port, the receiver's receive port and, between nodes, both hosts' network ports.
  StepSimulation::TaskId message(size_t from, size_t to, double bytes, std::vector<StepSimulation::TaskId> after) {
    const int from_node = topology_.node_of_rank.at(from), to_node = topology_.node_of_rank.at(to);
    const RegimeCost regime = inputs_.cluster.profile.regime(size_t(2 * bytes));
    const LinkCost& link = from_node == to_node ? regime.intra_node : regime.inter_node;
    std::vector<size_t> ports{send_port_[from], receive_port_[to]};
    if (from_node != to_node) {
      ports.push_back(network_port_[size_t(from_node)]);
      ports.push_back(network_port_[size_t(to_node)]);
    }
    return sim_.message(from, to, link.time_us(bytes) * 1e-6, std::move(after), std::move(ports));
  }

  void add_sent(size_t rank, double PhaseCounts::*phase, double bytes) { sent_.at(rank).*phase += bytes; }
  /// A blocking ring collective of `count` elements over `members` after each rank's task in `last`
  /// (rank i = last[i]): its bytes go to `phase` of every rank, and it becomes every rank's last task.
  void blocking_collective(Collective collective, size_t count, const std::vector<size_t>& members,
                           double PhaseCounts::*phase, std::vector<StepSimulation::TaskId>& last) {
    const double bytes = ring_bytes(collective, count, members);
    for (size_t rank = 0; rank < last.size(); ++rank) add_sent(rank, phase, bytes);
    const auto call = sim().collective(members, ring_s(collective, count, members), true, last);
    std::fill(last.begin(), last.end(), call);
  }
  void hold(size_t rank, double bytes) { memory_.at(rank) += bytes; }

  // Bytes of `samples` x the activations and gradients of boundaries [first, last] of `layers`.
  static double activation_bytes(const std::vector<LayerConfig>& layers, size_t first, size_t last, double samples) {
    double elements = 0;
    for (size_t boundary = first; boundary <= last; ++boundary)
      elements += double(boundary == 0 ? layers.front().input.elements() : layers[boundary - 1].output().elements());
    return 2 * elements * samples * kFloat;
  }

  StrategyPrediction finish(const Strategy& strategy) {
    StrategyPrediction prediction;
    prediction.strategy = strategy;
    prediction.memory_bytes = *std::max_element(memory_.begin(), memory_.end());
    std::vector<double> node_memory(inputs_.cluster.nodes, 0.0);
    for (size_t rank = 0; rank < memory_.size(); ++rank)
      node_memory.at(size_t(topology_.node_of_rank[rank])) += memory_[rank];
    prediction.node_memory_bytes = *std::max_element(node_memory.begin(), node_memory.end());
    if (!pass_.costed) return prediction;
    sim_.run();
    const size_t slowest = sim_.slowest_rank();
    prediction.total_s = sim_.step_seconds();
    prediction.compute_s = sim_.compute_seconds(slowest);
    prediction.comm_s = std::min(sim_.exposed_comm_seconds(slowest), prediction.total_s - prediction.compute_s);
    prediction.idle_s = std::max(0.0, prediction.total_s - prediction.compute_s - prediction.comm_s);
    for (const PhaseCounts& rank : sent_) {
      for (double PhaseCounts::*phase : {&PhaseCounts::forward, &PhaseCounts::backward, &PhaseCounts::grad_sync,
                                         &PhaseCounts::push, &PhaseCounts::pull})
        prediction.sent_bytes.*phase = std::max(prediction.sent_bytes.*phase, rank.*phase);
      prediction.sent_bytes_total = std::max(prediction.sent_bytes_total, rank.total());
    }
    return prediction;
  }

  const PlanInputs& inputs() const { return inputs_; }
  const Topology& topology() const { return topology_; }

 private:
  const PlanInputs& inputs_;
  Pass pass_;
  StepSimulation sim_;
  std::vector<PhaseCounts> sent_;
  std::vector<double> memory_;
  Topology topology_;
  double total_parameters_;
  double compute_speed_;  // what compute times are divided by (ClusterShape::compute_speed)
  std::vector<size_t> send_port_, receive_port_, network_port_;
  std::map<std::tuple<int, size_t, std::vector<size_t>, std::string>, double> bytes_cache_, time_cache_;
};

std::vector<size_t> range_of_ranks(size_t first, size_t count, size_t stride = 1) {
  std::vector<size_t> ranks;
  for (size_t i = 0; i < count; ++i) ranks.push_back(first + i * stride);
  return ranks;
}

using TaskIds = std::vector<StepSimulation::TaskId>;

// ---- data: DDP buckets reduce-scattered during backward, each rank updating its block, the
// updated blocks gathered (sharded_gradient_buckets.h); through node-shared memory on one node.
StrategyPrediction predict_data(const PlanInputs& inputs, const Strategy& strategy, Pass pass) {
  const ModelPlan& plan = inputs.model;
  const size_t ranks = size_t(strategy.grid.ranks()), layers = plan.layers.size();
  StepModel step(inputs, ranks, pass);
  const std::vector<size_t> members = range_of_ranks(0, ranks);
  const ParameterStore store(parameter_counts(plan.layers));
  const std::vector<ParameterRange> order = store.backward_order();
  const std::vector<BucketSpan> buckets = plan_buckets(order, inputs.bucket_bytes, store.size());
  const bool shared = inputs.cluster.nodes == 1;
  // On one node each rank's thread sums its block of a bucket from the peers' node-shared memory
  // inside the backward hook (sharded_gradient_buckets.h): the work takes the threads between layers.
  // Through the transport the ring progresses beside the computation.
  const bool on_threads = shared;
  std::vector<StepSimulation::TaskId> last_compute(ranks);
  for (size_t r = 0; r < ranks; ++r) {
    const double samples = double(shard_size(inputs.batch, r, ranks));
    last_compute[r] = step.sim().compute(r, step.data_s(samples) + step.layers_s(0, layers, false, samples));
    step.hold(r, 3.0 * double(store.size()) * kFloat +
                     StepModel::activation_bytes(plan.layers, 0, layers, double(shard_size(inputs.batch, 0, ranks))));
  }
  // Each bucket is ready once backward has passed its end: its lowest layer in backward order.
  std::vector<size_t> ready_layer(buckets.size(), layers);
  for (size_t k = 0; k < buckets.size(); ++k)
    for (const ParameterRange& range : order)
      if (range.offset + range.count <= buckets[k].offset + buckets[k].count)
        ready_layer[k] = std::min(ready_layer[k], range.layer);
  TaskIds syncs;
  for (size_t layer = layers; layer-- > 0;) {
    for (size_t r = 0; r < ranks; ++r)
      last_compute[r] = step.sim().compute(r, step.layer_s(layer, true, double(shard_size(inputs.batch, r, ranks))));
    for (size_t k = 0; k < buckets.size(); ++k) {
      if (ready_layer[k] != layer) continue;
      const size_t block = buckets[k].count / ranks, tail = buckets[k].count - block * ranks;
      // One node: the groups read peers' memory (the direct collectives).
      const std::string algorithm = shared ? "direct" : "ring";
      const double bytes = ShardedGradientBuckets::bucket_sent_bytes(
          buckets[k].count, ranks, shared, [&](Collective collective, size_t elements) {
            return step.ring_bytes(collective, elements, members, algorithm);
          });
      for (size_t r = 0; r < ranks; ++r) step.add_sent(r, &PhaseCounts::grad_sync, bytes);
      const double seconds = step.ring_s(Collective::reduce_scatter, block, members, algorithm) +
                             step.ring_s(Collective::allgather, block, members, algorithm) +
                             step.ring_s(Collective::allreduce, tail, members, algorithm);
      syncs.push_back(step.sim().collective(members, seconds, on_threads, last_compute));
      if (on_threads) std::fill(last_compute.begin(), last_compute.end(), syncs.back());
    }
  }
  for (size_t r = 0; r < ranks; ++r) {
    TaskIds after = syncs;
    after.push_back(last_compute[r]);
    step.sim().compute(r, step.update_s(double(store.size()) / double(ranks)), after);
  }
  return step.finish(strategy);
}

// The tensor-parallel run of layers [split.first, end) on `samples` samples, on every rank at once
// (tensor_split.h: TensorParallelRun); `begin_after` per rank: what the run waits for.
struct TensorRunPlan {
  std::vector<TensorSplit> splits;  // per part
};

// Forward of the run: compute per layer, a blocking allreduce after each row layer, the gathered
// column layer's allgather at the end. Returns per rank the last task.
TaskIds tensor_forward(StepModel& step, const TensorRunPlan& run, double samples,
                       const std::vector<size_t>& members) {
  const TensorSplit& split = run.splits.front();
  const size_t parts = split.parts, end = split.layers.size();
  TaskIds last(parts);
  size_t begin = split.first;
  bool gathered = false;
  for (size_t layer = split.first; layer < end; ++layer) gathered |= split.roles[layer] == TensorRole::gathered_column;
  std::vector<size_t> row_ends;
  for (size_t layer = split.first; layer < end; ++layer)
    if (split.roles[layer] == TensorRole::row) row_ends.push_back(layer + 1);
  if (row_ends.empty() || row_ends.back() != end) row_ends.push_back(end);
  for (size_t run_end : row_ends) {
    for (size_t part = 0; part < parts; ++part) {
      double seconds = 0;
      for (size_t layer = begin; layer < run_end; ++layer)
        seconds += step.slice_s(layer, false, samples, run.splits[part].layers[layer]);
      last[part] = step.sim().compute(part, seconds);
    }
    if (split.roles[run_end - 1] == TensorRole::row) {
      const size_t count = size_t(samples) * split.layers[run_end - 1].output().elements();
      step.blocking_collective(Collective::allreduce, count, members, &PhaseCounts::forward, last);
    }
    begin = run_end;
  }
  if (gathered) {
    size_t column = end;
    while (split.roles[column - 1] != TensorRole::gathered_column) --column;
    const ActivationShape slice = split.layers.back().output();
    const Slice channels = Slice::whole(split.layers[column - 1].outputs.total);
    const size_t block = size_t(samples) * slice.height * slice.width * channels.piece(0, parts).count;
    step.blocking_collective(Collective::allgather, block, members, &PhaseCounts::forward, last);
  }
  return last;
}

// Backward of the run: compute from the last layer down, a blocking allreduce of the input
// gradient at each column layer (but the run's first) that has parameters before it.
TaskIds tensor_backward(StepModel& step, const TensorRunPlan& run, double samples,
                        const std::vector<size_t>& members) {
  const TensorSplit& split = run.splits.front();
  const size_t parts = split.parts, end = split.layers.size();
  const auto needed = [&](size_t layer) {
    return std::any_of(split.layers.begin(), split.layers.begin() + std::ptrdiff_t(layer), has_parameters);
  };
  std::vector<size_t> starts;
  for (size_t layer = end; layer-- > split.first + 1;) {
    const bool column = split.roles[layer] == TensorRole::column || split.roles[layer] == TensorRole::gathered_column;
    if (column && needed(layer)) starts.push_back(layer);
  }
  starts.push_back(split.first);
  TaskIds last(parts);
  size_t run_end = end;
  for (size_t start : starts) {
    for (size_t part = 0; part < parts; ++part) {
      double seconds = 0;
      for (size_t layer = start; layer < run_end; ++layer)
        seconds += step.slice_s(layer, true, samples, run.splits[part].layers[layer]);
      last[part] = step.sim().compute(part, seconds);
    }
    if (start != split.first) {
      const size_t count = size_t(samples) * split.layers[start - 1].output().elements();
      step.blocking_collective(Collective::allreduce, count, members, &PhaseCounts::backward, last);
    }
    run_end = start;
  }
  return last;
}

TensorRunPlan tensor_run_plan(const ModelPlan& plan, size_t first, size_t parts) {
  TensorRunPlan run;
  for (size_t part = 0; part < parts; ++part)
    run.splits.push_back(split_tensor_parallel(plan.layers, first, part, parts));
  return run;
}

// ---- tensor: every rank runs its slices on the whole batch (tensor_parallel.h).
StrategyPrediction predict_tensor(const PlanInputs& inputs, const Strategy& strategy, Pass pass) {
  const ModelPlan& plan = inputs.model;
  const size_t ranks = size_t(strategy.grid.ranks());
  StepModel step(inputs, ranks, pass);
  const std::vector<size_t> members = range_of_ranks(0, ranks);
  const TensorRunPlan run = tensor_run_plan(plan, 0, ranks);
  const double samples = double(inputs.batch);
  for (size_t r = 0; r < ranks; ++r) step.sim().compute(r, step.data_s(samples));
  tensor_forward(step, run, samples, members);
  tensor_backward(step, run, samples, members);
  for (size_t r = 0; r < ranks; ++r) {
    const double parameters = double(ParameterStore(parameter_counts(run.splits[r].layers)).size());
    step.sim().compute(r, step.update_s(parameters));
    step.hold(r, 3.0 * parameters * kFloat +
                     StepModel::activation_bytes(run.splits[r].layers, 0, plan.layers.size(), samples));
  }
  return step.finish(strategy);
}

// ---- hybrid: data-parallel convolutions on shards, the boundary gathered, the fc suffix tensor-
// parallel on the whole batch, its input gradient reduce-scattered, the prefix's gradients in DDP
// buckets (hybrid_parallel.h).
StrategyPrediction predict_hybrid(const PlanInputs& inputs, const Strategy& strategy, Pass pass) {
  const ModelPlan& plan = inputs.model;
  const size_t ranks = size_t(strategy.grid.ranks()), boundary = first_fully_connected(plan);
  StepModel step(inputs, ranks, pass);
  const std::vector<size_t> members = range_of_ranks(0, ranks);
  const TensorRunPlan run = tensor_run_plan(plan, boundary, ranks);
  const TensorSplit& split = run.splits.front();
  const size_t block = (inputs.batch + ranks - 1) / ranks, features = split.layers[boundary].input.elements();
  TaskIds last(ranks);
  for (size_t r = 0; r < ranks; ++r) {
    const double samples = double(shard_size(inputs.batch, r, ranks));
    last[r] = step.sim().compute(r, step.data_s(samples) + step.layers_s(0, boundary, false, samples));
  }
  // The boundary's activations and the labels, each an allgather of blocks padded to the largest shard.
  for (const size_t count : {block * features, block}) {
    step.blocking_collective(Collective::allgather, count, members, &PhaseCounts::forward, last);
  }
  const double whole = double(inputs.batch);
  tensor_forward(step, run, whole, members);
  last = tensor_backward(step, run, whole, members);
  const bool prefix_has_parameters =
      std::any_of(split.layers.begin(), split.layers.begin() + std::ptrdiff_t(boundary), has_parameters);
  const bool partial =
      split.roles[boundary] == TensorRole::column || split.roles[boundary] == TensorRole::gathered_column;
  if (prefix_has_parameters && partial) {
    const size_t count = block * features;
    step.blocking_collective(Collective::reduce_scatter, count, members, &PhaseCounts::backward, last);
  }
  // The prefix's backward, its gradients allreduced in buckets as they become final.
  const ParameterStore store(parameter_counts(split.layers));
  std::vector<ParameterRange> prefix;
  for (const ParameterRange& range : store.backward_order())
    if (range.layer < boundary) prefix.push_back(range);
  std::vector<TaskIds> layer_done(ranks, TaskIds(boundary));
  for (size_t r = 0; r < ranks; ++r) {
    const double samples = double(shard_size(inputs.batch, r, ranks));
    if (prefix_has_parameters)
      for (size_t layer = boundary; layer-- > 0;)
        layer_done[r][layer] = last[r] = step.sim().compute(r, step.layer_s(layer, true, samples));
    const double parameters = double(store.size());
    step.hold(r, 3.0 * parameters * kFloat + StepModel::activation_bytes(split.layers, 0, boundary, double(block)) +
                     StepModel::activation_bytes(run.splits[r].layers, boundary, plan.layers.size(), whole));
  }
  TaskIds syncs;
  for (const BucketSpan& bucket : plan_buckets(prefix, inputs.bucket_bytes, store.size())) {
    const double bytes = step.ring_bytes(Collective::allreduce, bucket.count, members);
    for (size_t r = 0; r < ranks; ++r) step.add_sent(r, &PhaseCounts::grad_sync, bytes);
    size_t ready_layer = boundary;
    for (const ParameterRange& range : prefix)
      if (range.offset + range.count <= bucket.offset + bucket.count) ready_layer = std::min(ready_layer, range.layer);
    TaskIds after;
    for (size_t r = 0; r < ranks; ++r) after.push_back(layer_done[r][ready_layer]);
    syncs.push_back(
        step.sim().collective(members, step.ring_s(Collective::allreduce, bucket.count, members), false, after));
  }
  for (size_t r = 0; r < ranks; ++r) {
    TaskIds after = syncs;
    after.push_back(last[r]);
    step.sim().compute(r, step.update_s(double(ParameterStore(parameter_counts(run.splits[r].layers)).size())), after);
  }
  return step.finish(strategy);
}

// ---- pipeline (dp x pp): stages of consecutive layers, micro-batches in GPipe or 1F1B order, each
// boundary's activations forward and gradients back as messages, the stages' replicas summing
// gradients in DDP buckets at the end (pipeline_parallel.cc).
StrategyPrediction predict_pipeline(const PlanInputs& inputs, const Strategy& strategy, Pass pass) {
  const ModelPlan& plan = inputs.model;
  const size_t stages = size_t(strategy.grid.pp), replicas = size_t(strategy.grid.dp), ranks = stages * replicas;
  StepModel step(inputs, ranks, pass);
  const std::vector<size_t> boundaries = given_balance(strategy.balance, stages, plan.layers.size());
  size_t micro_batch = 0;
  // Per rank and micro-batch: the forward and backward tasks, and the messages they receive.
  std::vector<std::vector<StepSimulation::TaskId>> forward(ranks), backward(ranks);
  std::vector<StepSimulation::TaskId> last(ranks);
  std::vector<std::vector<MicroBatch>> micro_of(replicas);
  for (size_t replica = 0; replica < replicas; ++replica) {
    const size_t samples = shard_size(inputs.batch, replica, replicas);
    micro_of[replica] = split_micro_batches(samples, std::min(strategy.micro_batches, samples));
    micro_batch = std::max(micro_batch, largest_micro_batch(micro_of[replica]));
    for (size_t stage = 0; stage < stages; ++stage) {
      const size_t rank = replica * stages + stage, first = boundaries[stage], end = boundaries[stage + 1];
      const std::vector<MicroBatch>& micros = micro_of[replica];
      forward[rank].assign(micros.size(), 0);
      backward[rank].assign(micros.size(), 0);
      const std::vector<PipelineAction> actions = pipeline_schedule(strategy.schedule, stage, stages, micros.size());
      last[rank] = step.sim().compute(rank, stage == 0 ? step.data_s(double(samples)) : 0.0);
      for (const PipelineAction& action : actions) {
        const double size = double(micros[action.micro_batch].size);
        const bool is_backward = action.kind == PipelineAction::Kind::backward;
        last[rank] = step.sim().compute(rank, step.layers_s(first, end, is_backward, size));
        (is_backward ? backward : forward)[rank][action.micro_batch] = last[rank];
      }
      const size_t output = plan.layers[end - 1].output().elements(), input = plan.layers[first].input.elements();
      for (const MicroBatch& micro : micros) {
        if (stage + 1 < stages) step.add_sent(rank, &PhaseCounts::forward, double(micro.size * output * kFloat));
        if (stage > 0) step.add_sent(rank, &PhaseCounts::backward, double(micro.size * input * kFloat));
      }
      double parameters = 0;
      for (size_t layer = first; layer < end; ++layer) parameters += double(plan.layers[layer].parameter_count());
      step.hold(rank, 3.0 * parameters * kFloat + double(max_in_flight(actions)) *
                                                      StepModel::activation_bytes(plan.layers, first, end,
                                                                                  double(largest_micro_batch(micros))));
    }
  }
  // The messages between neighbouring stages, and what waits for them.
  for (size_t replica = 0; replica < replicas; ++replica)
    for (size_t stage = 0; stage + 1 < stages; ++stage) {
      const size_t rank = replica * stages + stage, next = rank + 1, end = boundaries[stage + 1];
      const size_t per_sample = plan.layers[end - 1].output().elements();
      for (size_t i = 0; i < micro_of[replica].size(); ++i) {
        const double bytes = double(micro_of[replica][i].size * per_sample * kFloat);
        step.sim().depend(forward[next][i], step.message(rank, next, bytes, {forward[rank][i]}));
        step.sim().depend(backward[rank][i], step.message(next, rank, bytes, {backward[next][i]}));
      }
    }
  // The replicas of each stage sum their gradients (buckets started after the step's last backward).
  for (size_t stage = 0; stage < stages; ++stage) {
    const std::vector<size_t> members = range_of_ranks(stage, replicas, stages);
    const std::vector<LayerConfig> layers(plan.layers.begin() + std::ptrdiff_t(boundaries[stage]),
                                          plan.layers.begin() + std::ptrdiff_t(boundaries[stage + 1]));
    const ParameterStore store(parameter_counts(layers));
    TaskIds syncs;
    if (replicas > 1) {
      TaskIds after;
      for (size_t member : members) after.push_back(last[member]);
      for (const BucketSpan& bucket : plan_buckets(store.backward_order(), inputs.bucket_bytes, store.size())) {
        const double bytes = step.ring_bytes(Collective::allreduce, bucket.count, members);
        for (size_t member : members) step.add_sent(member, &PhaseCounts::grad_sync, bytes);
        syncs.push_back(
            step.sim().collective(members, step.ring_s(Collective::allreduce, bucket.count, members), false, after));
      }
    }
    for (size_t member : members) {
      TaskIds after = syncs;
      after.push_back(last[member]);
      step.sim().compute(member, step.update_s(double(store.size())), after);
    }
  }
  StrategyPrediction prediction = step.finish(strategy);
  prediction.micro_batch = micro_batch;
  return prediction;
}

// ---- ps: workers push each server its range of the gradient, the server (sync) sums every
// worker's push, updates its range and sends it back (parameter_server.cc).
StrategyPrediction predict_parameter_server(const PlanInputs& inputs, const Strategy& strategy, Pass pass) {
  const ModelPlan& plan = inputs.model;
  const size_t ranks = size_t(strategy.grid.ranks()), layers = plan.layers.size();
  const bool colocated = strategy.ps_servers == 0;
  const size_t servers = colocated ? ranks : strategy.ps_servers, workers = colocated ? ranks : ranks - servers;
  const auto server_rank = [&](size_t server) { return colocated ? server : workers + server; };
  StepModel step(inputs, ranks, pass);
  const size_t count = ParameterStore(parameter_counts(plan.layers)).size();
  const auto range = [&](size_t server) {
    return std::pair<size_t, size_t>{server * count / servers, (server + 1) * count / servers};
  };
  // Every rank builds the model's values and gradients (a dedicated server's values start its range).
  for (size_t r = 0; r < ranks; ++r) step.hold(r, 2.0 * double(count) * kFloat);
  TaskIds computed(workers);
  for (size_t w = 0; w < workers; ++w) {
    const double samples = double(shard_size(inputs.batch, w, workers));
    computed[w] = step.sim().compute(
        w, step.data_s(samples) + step.layers_s(0, layers, false, samples) + step.layers_s(0, layers, true, samples));
    step.hold(w, StepModel::activation_bytes(plan.layers, 0, layers, double(shard_size(inputs.batch, 0, workers))));
  }
  for (size_t s = 0; s < servers; ++s) {
    const size_t server = server_rank(s);
    const auto [begin, end] = range(s);
    const double bytes = double((end - begin) * kFloat);
    TaskIds pushes;
    for (size_t w = 0; w < workers; ++w) {
      if (w == server) {
        pushes.push_back(computed[w]);
        continue;
      }
      step.add_sent(w, &PhaseCounts::push, bytes);
      pushes.push_back(step.message(w, server, bytes, {computed[w]}));
    }
    // The server's thread copies a colocated rank's own push, and each reply out of the range (a
    // colocated rank's own into its parameters), besides the update.
    const double copies = double(workers + (colocated ? 1 : 0)) * bytes;
    const auto update = step.sim().compute(server, step.update_s(double(end - begin)) + step.copy_s(copies), pushes);
    for (size_t w = 0; w < workers; ++w) {
      if (w == server) continue;
      step.add_sent(server, &PhaseCounts::pull, bytes);
      step.message(server, w, bytes, {update});
    }
    step.hold(server, double(end - begin) * kFloat * double(2 + 2 * workers));
  }
  return step.finish(strategy);
}

std::string join(const std::vector<size_t>& values) {
  std::string text;
  for (size_t value : values) {
    if (!text.empty()) text += ",";
    text += std::to_string(value);
  }
  return text;
}

}  // namespace

std::string Strategy::grid_text() const {
  return "dp=" + std::to_string(grid.dp) + ",tp=" + std::to_string(grid.tp) + ",pp=" + std::to_string(grid.pp);
}

std::string Strategy::name() const {
  if (mode == "pipeline") return "pipeline " + schedule;
  if (mode == "ps") return ps_servers == 0 ? "ps colocated" : "ps " + std::to_string(ps_servers) + " server(s)";
  return mode;
}

std::vector<std::string> Strategy::train_arguments() const {
  std::vector<std::string> arguments{"--mode", mode};
  if (mode == "pipeline") {
    for (const std::string& argument :
         {std::string("--stages"), std::to_string(grid.pp), std::string("--microbatches"),
          std::to_string(micro_batches), std::string("--schedule"), schedule, std::string("--balance"), join(balance)})
      arguments.push_back(argument);
  }
  if (mode == "ps") {
    for (const std::string& argument :
         {std::string("--servers"), ps_servers == 0 ? std::string("colocated") : std::to_string(ps_servers),
          std::string("--sync"), std::string("sync")})
      arguments.push_back(argument);
  }
  return arguments;
}

Topology ClusterShape::topology() const {
  Topology topology;
  for (size_t rank = 0; rank < ranks(); ++rank) topology.node_of_rank.push_back(int(rank / ranks_per_node));
  return topology;
}

std::string tensor_slice_key(const LayerConfig& layer) { return layer.name() + " on " + layer.input.to_string(); }

std::map<std::string, double> measure_slice_time_ratios(const ModelPlan& model, size_t ranks, size_t batch,
                                                        Backend& backend) {
  std::map<std::string, double> ratios;
  if (ranks < 2) return ratios;
  const std::vector<double> whole = measure_layer_seconds(model.layers, backend, 1, batch);
  // Tensor parallelism splits from the first layer, hybrid from the first fully connected one.
  for (size_t first : {size_t{0}, first_fully_connected(model)}) {
    if (first >= model.layers.size()) continue;
    for (size_t part = 0; part < ranks; ++part) {
      const TensorSplit split = split_tensor_parallel(model.layers, first, part, ranks);
      const std::vector<LayerConfig> run(split.layers.begin() + std::ptrdiff_t(first), split.layers.end());
      const std::vector<double> seconds = measure_layer_seconds(run, backend, 1, batch);
      for (size_t i = 0; i < run.size(); ++i) {
        const std::string key = tensor_slice_key(run[i]);
        if (whole[first + i] > 0 && key != tensor_slice_key(model.layers[first + i]))
          ratios.emplace(key, seconds[i] / whole[first + i]);
      }
    }
  }
  return ratios;
}

bool ClusterShape::ranks_share_cores(int threads) const {
  return cores_per_node > 0 && ranks_per_node * size_t(std::max(threads, 1)) > cores_per_node;
}

// The scheduler lets a rank compute on its core until it waits (its stretches are shorter than a
// time slice, and a waiting rank yields), so ranks placed on one core compute one after another.
// Which ranks it places together is up to it and differs from run to run, so a prediction averages
// over placements: the node's rank threads split into blocks of consecutive threads, one per core,
// rotated by a few offsets.
size_t ClusterShape::core_deals(int threads) const {
  constexpr size_t kMostDeals = 8;
  return ranks_share_cores(threads) ? std::min(ranks_per_node, kMostDeals) : 1;
}

std::vector<size_t> ClusterShape::cores_of(size_t local_rank, int threads, size_t deal) const {
  if (!ranks_share_cores(threads)) return {};
  const size_t per_rank = size_t(std::max(threads, 1)), slots = ranks_per_node * per_rank;
  const size_t rotation = deal * ranks_per_node / core_deals(threads);
  std::vector<size_t> cores;
  for (size_t thread = 0; thread < per_rank; ++thread) {
    const size_t slot = ((local_rank + rotation) % ranks_per_node) * per_rank + thread;
    const size_t core = slot * cores_per_node / slots;
    if (std::find(cores.begin(), cores.end(), core) == cores.end()) cores.push_back(core);
  }
  return cores;
}

std::vector<size_t> balanced_layers_per_stage(const LayerTimes& layers, size_t stages) {
  std::vector<double> costs;
  for (const LayerTime& layer : layers.layers) costs.push_back(layer.forward_s + layer.backward_s);
  const std::vector<size_t> boundaries = balance_stages(costs, stages);
  std::vector<size_t> counts;
  for (size_t stage = 0; stage < stages; ++stage) counts.push_back(boundaries[stage + 1] - boundaries[stage]);
  return counts;
}

std::vector<Strategy> enumerate_strategies(const ModelPlan& model, const LayerTimes& layers, size_t ranks,
                                           size_t batch) {
  if (ranks < 2) throw UsageError("cclab plan compares strategies over 2 or more ranks, not " + std::to_string(ranks));
  if (batch < ranks)
    throw UsageError("--batch " + std::to_string(batch) + " is smaller than the " + std::to_string(ranks) +
                     " ranks: data-parallel ranks need a sample each");
  const int n = int(ranks);
  const auto strategy = [](const std::string& mode, Grid grid) {
    Strategy made;
    made.mode = mode;
    made.grid = grid;
    return made;
  };
  std::vector<Strategy> strategies;
  strategies.push_back(strategy("data", {n, 1, 1}));
  strategies.push_back(strategy("tensor", {1, n, 1}));
  for (size_t stages = 2; stages <= ranks && stages <= model.layers.size(); ++stages) {
    if (ranks % stages != 0) continue;
    const size_t replicas = ranks / stages, replica_batch = (batch + replicas - 1) / replicas;
    const std::vector<size_t> balance = balanced_layers_per_stage(layers, stages);
    std::vector<size_t> counts;
    for (size_t per_stage : {size_t(1), size_t(2), size_t(4)}) {
      const size_t micro = std::min({per_stage * stages, replica_batch, kMostMicroBatches});
      if (std::find(counts.begin(), counts.end(), micro) == counts.end()) counts.push_back(micro);
    }
    for (const std::string schedule : {"gpipe", "1f1b"})
      for (size_t micro : counts) {
        Strategy pipeline = strategy("pipeline", {int(replicas), 1, int(stages)});
        pipeline.micro_batches = micro;
        pipeline.schedule = schedule;
        pipeline.balance = balance;
        strategies.push_back(pipeline);
      }
  }
  if (first_fully_connected(model) < model.layers.size()) strategies.push_back(strategy("hybrid", {n, 1, 1}));
  strategies.push_back(strategy("ps", {n, 1, 1}));
  Strategy dedicated = strategy("ps", {n, 1, 1});
  dedicated.ps_servers = 1;
  strategies.push_back(dedicated);
  return strategies;
}

namespace {

StrategyPrediction predict_mode(const PlanInputs& inputs, const Strategy& strategy, Pass pass) {
  if (strategy.mode == "data") return predict_data(inputs, strategy, pass);
  if (strategy.mode == "tensor") return predict_tensor(inputs, strategy, pass);
  if (strategy.mode == "pipeline") return predict_pipeline(inputs, strategy, pass);
  if (strategy.mode == "hybrid") return predict_hybrid(inputs, strategy, pass);
  if (strategy.mode == "ps") return predict_parameter_server(inputs, strategy, pass);
  throw UsageError("unknown strategy '" + strategy.mode + "' (data, tensor, pipeline, hybrid, ps)");
}

}  // namespace

StrategyPrediction predict_strategy(const PlanInputs& inputs, const Strategy& strategy) {
  if (size_t(strategy.grid.ranks()) != inputs.cluster.ranks())
    throw UsageError("strategy " + strategy.name() + " needs " + std::to_string(strategy.grid.ranks()) +
                     " ranks, the cluster has " + std::to_string(inputs.cluster.ranks()));
  // The step's messages and collectives move data that its computation keeps evicting: a node
  // whose ranks hold more than the caches do streams them from memory, whatever their own size.
  PlanInputs within_step = inputs;
  within_step.cluster.profile =
      inputs.cluster.profile.within_working_set(size_t(predict_mode(inputs, strategy, {false}).node_memory_bytes));
  const size_t deals = inputs.cluster.core_deals(inputs.layers.threads);
  StrategyPrediction prediction;
  for (size_t deal = 0; deal < deals; ++deal) {
    const StrategyPrediction placed = predict_mode(within_step, strategy, {true, deal});
    if (deal == 0) {
      prediction = placed;
      prediction.total_s = prediction.compute_s = prediction.comm_s = prediction.idle_s = 0;
    }
    for (double StrategyPrediction::*seconds :
         {&StrategyPrediction::total_s, &StrategyPrediction::compute_s, &StrategyPrediction::comm_s,
          &StrategyPrediction::idle_s})
      prediction.*seconds += placed.*seconds / double(deals);
  }
  return prediction;
}

std::vector<StrategyPrediction> rank_strategies(const PlanInputs& inputs, const std::vector<Strategy>& strategies) {
  std::vector<StrategyPrediction> predictions;
  for (const Strategy& strategy : strategies) predictions.push_back(predict_strategy(inputs, strategy));
  std::stable_sort(predictions.begin(), predictions.end(),
                   [](const StrategyPrediction& a, const StrategyPrediction& b) {
                     if (a.total_s != b.total_s) return a.total_s < b.total_s;
                     return a.sent_bytes_total < b.sent_bytes_total;
                   });
  const StrategyPrediction& best = predictions.front();
  char text[160];
  for (size_t i = 0; i < predictions.size(); ++i) {
    StrategyPrediction& p = predictions[i];
    if (i == 0) {
      std::snprintf(text, sizeof text, "fastest: %.0f%% compute", 100 * p.compute_s / p.total_s);
    } else {
      // What costs it most against the best: its compute, its exposed communication or its idle time.
      const double more_compute = p.compute_s - best.compute_s, more_comm = p.comm_s - best.comm_s,
                   more_idle = p.idle_s - best.idle_s;
      if (more_idle >= more_comm && more_idle >= more_compute)
        std::snprintf(text, sizeof text, "+%.2f ms waiting (%s)", more_idle * 1e3,
                      p.strategy.mode == "pipeline" ? "pipeline bubble" : "ranks wait on the slowest");
      else if (more_comm >= more_compute)
        std::snprintf(text, sizeof text, "+%.2f ms exposed comm (%.0f KB/rank)", more_comm * 1e3,
                      p.sent_bytes_total / 1e3);
      else
        std::snprintf(text, sizeof text, "+%.2f ms compute (%s)", more_compute * 1e3,
                      p.strategy.mode == "tensor" || p.strategy.mode == "hybrid" ? "whole batch on every rank"
                                                                                 : "less parallel work");
    }
    p.why = text;
  }
  return predictions;
}

}  // namespace cclab::train
