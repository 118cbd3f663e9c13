// `cclab plan` (DESIGN 3.10): every strategy `cclab train` can run on N ranks, each one's step
// simulated (step_simulation.h) from measured per-layer compute (layer_times.h) and the alpha-beta
// costs of its collectives and messages (cclab/cost_model.h), and ranked by predicted step time.
//
// Bytes per rank come from the same pieces the modes predict with: the ring schedules' exact counts
// (predict_traffic, as ProcessGroup), plan_buckets for the gradient buckets, split_tensor_parallel
// for the tensor-parallel collectives, split_micro_batches for the pipeline messages, the servers'
// contiguous ranges of the parameter server. A test checks them against the trainer's counters.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "cclab/algorithm.h"
#include "cclab/cost_model.h"
#include "layer_times.h"
#include "modes/mode.h"
#include "trainer.h"

namespace cclab::train {

/// One way to run the model on the ranks: the `cclab train` flags that select it.
struct Strategy {
  std::string mode;  // data | tensor | pipeline | hybrid | ps
  Grid grid;
  size_t micro_batches = 0;     // pipeline: per global batch (the trainer's --microbatches)
  std::string schedule;         // pipeline: gpipe | 1f1b
  std::vector<size_t> balance;  // pipeline: layers per stage
  size_t ps_servers = 0;        // ps: dedicated servers (0: colocated)

  /// "dp=2,tp=1,pp=1"
  std::string grid_text() const;
  /// Short name for tables: "pipeline 1f1b", "ps 1 server".
  std::string name() const;
  /// The `cclab train` arguments that run it (--mode, --grid/--stages, ...).
  std::vector<std::string> train_arguments() const;
};

/// The machines the plan is for: this host (one node of `ranks` ranks, the profile measured or read)
/// or a described cluster (--cluster: predicted only).
struct ClusterShape {
  size_t nodes = 1, ranks_per_node = 1;
  double compute_speed = 1;  // compute times are divided by it
  /// Cores of a node (0: one for every rank thread). Where a node's ranks run more compute threads
  /// than it has cores, they take turns on them (cores_of).
  size_t cores_per_node = 0;
  bool what_if = false;
  CostProfile profile;
  size_t ranks() const { return nodes * ranks_per_node; }
  Topology topology() const;
  /// Whether ranks of `threads` compute threads each outnumber a node's cores.
  bool ranks_share_cores(int threads) const;
  /// How many placements of ranks on cores a prediction averages over: 1 while the cores are enough.
  size_t core_deals(int threads) const;
  /// The cores (0 to cores_per_node - 1) the threads of the node's `local_rank`-th rank run on in
  /// placement `deal` (0 to core_deals() - 1); empty while the cores are enough.
  std::vector<size_t> cores_of(size_t local_rank, int threads, size_t deal) const;
};

struct PlanInputs {
  ModelPlan model;
  LayerTimes layers;  // measured at `batch` on one rank
  size_t batch = 64;
  size_t bucket_bytes = size_t{1} << 20;  // the trainer's default --bucket-mb 1
  ClusterShape cluster;
  /// Tensor-parallel slices' compute over their whole layer's, by tensor_slice_key (measured on this
  /// host: measure_slice_time_ratios). A slice not here costs its share of the layer's work.
  std::map<std::string, double> slice_time_ratios;
};

/// "fc:500[0:250] on 800x1x1": a layer instance's kind, slice and input, which fix its compute.
std::string tensor_slice_key(const LayerConfig& layer);

/// For every layer that tensor or hybrid parallelism over `ranks` ranks slices: the slice's forward +
/// backward time over the whole layer's, each measured at `batch` samples on `backend` (a split layer
/// runs smaller matrix products, which do less work per second than the whole one).
std::map<std::string, double> measure_slice_time_ratios(const ModelPlan& model, size_t ranks, size_t batch,
                                                        Backend& backend);

struct StrategyPrediction {
  Strategy strategy;
  size_t micro_batch = 0;                                     // pipeline: samples per micro-batch
  double compute_s = 0, comm_s = 0, idle_s = 0, total_s = 0;  // the slowest rank's split of the step
  PhaseCounts sent_bytes;                                     // per step, each phase's maximum over ranks
  double sent_bytes_total = 0;                                // per step, the busiest rank's total
  double memory_bytes = 0;  // the rank that holds most: parameters, gradients, momentum, activations
  double node_memory_bytes = 0;  // what the ranks of the busiest node hold together
  std::string why;               // filled by rank_strategies
};

/// Every strategy the trainer runs on `ranks` ranks for `model` and `batch`: data; tensor; pipeline
/// (each stage count that divides the ranks, gpipe and 1f1b, micro-batch counts 1x, 2x and 4x the
/// stages; dp x pp grids); hybrid; ps (colocated, and one dedicated server). Throws UsageError when
/// none fits (a batch smaller than the ranks need).
std::vector<Strategy> enumerate_strategies(const ModelPlan& model, const LayerTimes& layers, size_t ranks,
                                           size_t batch);

/// One strategy's predicted step, bytes and memory. Its transfers, copies and collectives are
/// costed among the step's working set (CostProfile::within_working_set): the memory the node's
/// ranks hold, from a first pass over the same step.
StrategyPrediction predict_strategy(const PlanInputs& inputs, const Strategy& strategy);

/// Predicts every strategy and sorts them by predicted step time (ties: fewer bytes), with a short
/// reason for each ("fastest", "comm 2.1 ms exposed", "pipeline bubble 30%").
std::vector<StrategyPrediction> rank_strategies(const PlanInputs& inputs, const std::vector<Strategy>& strategies);

/// The layer split balance_stages picks for `stages` from the measured layer times.
std::vector<size_t> balanced_layers_per_stage(const LayerTimes& layers, size_t stages);

}  // namespace cclab::train
