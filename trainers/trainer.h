// Single-process training: the loop every parallel mode decomposes (DESIGN 3.6). One global batch
// per step: load, forward, softmax cross-entropy (normalised by the global batch), backward,
// SGD-with-momentum update; evaluation on the test split after every epoch; one "epoch" record per
// epoch and one "train" record per run (DESIGN 3.5, written by report.h, which the parallel modes
// reuse with their communication filled in).
//
// Time per step is split as every mode reports it: compute (data loading, forward, backward,
// update), communication (none here) and idle (the rest of the step's wall time: waiting).
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/dataset.h"
#include "model/model.h"
#include "model/spec.h"

namespace cclab {
class Comm;
}

namespace cclab::train {

/// Ranks along each parallel dimension; ranks = dp x tp x pp.
struct Grid {
  int dp = 1, tp = 1, pp = 1;
  int ranks() const { return dp * tp * pp; }
};

struct TrainOptions {
  std::string model = "lenet5";  // built-in name or layer list (spec.h)
  std::string data = "fashion-mnist";
  std::string data_directory = kFashionMnistDirectory;
  size_t epochs = 1;
  size_t steps = 0;   // 0: whole epochs; otherwise stop after this many steps (crossing epochs)
  size_t batch = 64;  // global batch
  double learning_rate = 0.05;
  double momentum = 0.9;
  uint64_t seed = 1;
  int threads = 0;              // 0: CCLAB_THREADS, else OMP_NUM_THREADS, else the CPUs this process may use
  std::string device = "cpu";   // cpu (oneDNN) | cuda (cuDNN and cuBLAS on the rank's GPU; backends/cuda/)
  bool evaluate = true;         // test-set loss and accuracy after every epoch, in global batches of `batch`
  bool profile_layers = false;  // print time per layer
  std::string profile_layers_path;  // --profile-layers FILE: also write the times there (layer_times.h)
  std::string json_path;
  std::string trace_path;  // Chrome trace events of every training step (cclab/trace.h)
  std::string mode = "data";  // data | tensor | pipeline | hybrid | ps | fedavg
  Grid grid;
  size_t bucket_bytes = size_t{1} << 20;  // data mode: gradient bucket size (--bucket-mb)
  // Parameter server (--mode ps): dedicated server ranks (--servers S, the last S ranks; 0: every rank
  // also serves, --servers colocated), consistency (--sync sync | async | ssp) and ssp's bound on how
  // many steps a worker may run ahead of the slowest (--staleness K).
  size_t ps_servers = 0;
  std::string ps_sync = "sync";
  size_t staleness = 1;
  // --straggler RANK:FACTOR: that worker's compute takes FACTOR times as long (parameter server).
  int straggler_rank = -1;
  double straggler_factor = 1;
  // Federated averaging (--mode fedavg; servers placed as --servers says for ps): local steps per
  // round (--local-steps K), the fraction of the workers that take part in a round (--participation
  // F), the probability that a participant drops out (--drop P), how the workers' data is cut
  // (--shards iid | label-skew) and how long a server waits for the others after a round's first
  // upload arrived (--round-deadline SECONDS).
  size_t local_steps = 1;
  double participation = 1, drop = 0;
  std::string shards = "iid";
  double round_deadline_s = 0.25;
  // Pipeline: micro-batches per global batch (--microbatches; 0: 4 per stage, at most the batch)
  // and the schedule (--schedule gpipe | 1f1b). Stages: grid.pp (--stages).
  size_t microbatches = 0;
  std::string schedule = "1f1b";
  // Pipeline: layers per stage (--balance 4,5, as torchgpipe's balance); empty: balanced by the
  // measured time of each layer.
  std::vector<size_t> balance;
  // Checkpoints (checkpoint.h): with a directory, written every `checkpoint_every` steps (0: only)
  // at the end of every epoch and of the run; rank 0 writes. `resume` loads DIR/checkpoint.bin and
  // continues from its step count: --steps / --epochs remain the run's total, not what is left.
  std::string checkpoint_dir;
  size_t checkpoint_every = 0;
  bool resume = false;
};

/// Mean time per step, seconds: loading data, computing forward, backward and the update, and
/// inside communication calls (ParallelMode's StepResult).
struct PhaseTimes {
  double data_s = 0, forward_s = 0, backward_s = 0, update_s = 0, comm_s = 0;
};

/// Mean wall time per step, split (DESIGN 3.6): compute + comm + idle = total.
struct StepTime {
  double compute_s = 0, comm_s = 0, idle_s = 0, total_s = 0;
};

/// What one rank sends per step in a phase (maximum over ranks): bytes, measured and predicted,
/// and messages.
struct Traffic {
  double sent_bytes_per_rank = 0;
  double predicted_sent_bytes_per_rank = 0;
  double sent_messages_per_rank = 0;
  double textbook_sent_bytes_per_rank = 0;  // DESIGN 3.7's formula for the same calls (no chunk rounding)
};

struct PhaseTraffic {
  Traffic forward, backward, grad_sync, push, pull;  // the order of PhaseCounts
  Traffic& at(size_t phase) {
    Traffic* const phases[] = {&forward, &backward, &grad_sync, &push, &pull};
    return *phases[phase];
  }
};

struct Evaluation {
  double loss = 0;      // mean over the data set
  double accuracy = 0;  // 0..1
};

struct EpochSummary {
  size_t epoch = 0;  // 1-based
  size_t steps = 0, samples = 0;
  double train_loss = 0, train_accuracy = 0;  // means over the epoch's steps / samples
  std::optional<Evaluation> test;
  double time_s = 0;  // training time (steps only, the warm-up step included)
  // Over the timed steps: all but the process's first step (the warm-up: it builds the oneDNN
  // primitives and connects the peers), unless it is the run's only step.
  size_t timed_steps = 0;
  double images_per_s = 0;
  StepTime step_time;  // mean per timed step
  PhaseTimes phases;   // mean per timed step
};

/// How stale the gradients a parameter server applied were: updates to its range between the values
/// a worker computed with and its push (mean and maximum over the pushes).
struct Staleness {
  double mean = 0, max = 0;
  size_t pushes = 0;
};

/// What a mode adds to the run's train record and printed summary (federated averaging: its rounds).
struct ModeRecord {
  nlohmann::json fields = nlohmann::json::object();  // merged into the train record
  std::string summary;                               // "# ..." lines, printed before the summary table
};

struct TrainSummary {
  ModelPlan plan;
  size_t parameters = 0;
  int threads = 1;
  std::string threads_source;
  std::string backend_description;  // "oneDNN 2.6.3 (OpenMP, avx512_core)", for the header
  nlohmann::json backend_record;    // the train record's "backend"
  std::string train_description, test_description;
  size_t steps = 0;
  double epochs = 0;      // steps / steps per epoch
  double final_loss = 0;  // mean training loss over the last epoch
  double last_step_loss = 0;
  std::optional<Evaluation> test;
  double train_time_s = 0, eval_time_s = 0;  // train_time_s: the timed steps
  double first_step_s = 0;                   // the warm-up step (0: none), max over ranks
  // What a rank holds at the end of the run: its buffers made since the mode was built (parameters,
  // gradients, momentum, activations, workspaces, messages) and its memory registered for peers; max
  // over ranks.
  double memory_bytes_per_rank = 0;
  size_t timed_steps = 0;                    // the steps images_per_s, step_time and phases cover
  double images_per_s = 0;
  std::optional<double> speedup = 1.0;  // over one rank; the one-rank run is 1 by definition
  StepTime step_time;
  PhaseTimes phases;
  PhaseTraffic traffic;                                               // per phase, each the maximum over ranks
  double sent_bytes_per_rank = 0, predicted_sent_bytes_per_rank = 0;  // per step, all phases, max over ranks
  std::vector<EpochSummary> epoch_summaries;
  std::vector<double> step_losses;                  // global mean loss of every step (for equivalence checks)
  std::vector<double> step_samples_us;              // timed steps' wall times, slowest rank (samples_for_record)
  double parameter_sum = 0, parameter_abs_sum = 0;  // of the final parameters
  size_t buckets = 0;                               // data mode: gradient buckets per step
  std::string grad_sync_path;                       // data mode: ParallelMode::grad_sync_path()
  double received_bytes_per_rank = 0, received_messages_per_rank = 0;  // per step, all phases, max over ranks
  std::string split;  // how the mode split the model over the ranks (ParallelMode::describe)
  std::optional<Staleness> staleness;  // parameter server: over every server's pushes
  ModeRecord mode_record;              // ParallelMode::mode_record(): fedavg's rounds
};

/// Threads to use and where the number came from ("--threads", "CCLAB_THREADS", "OMP_NUM_THREADS",
/// "cpus available").
std::pair<int, std::string> resolve_compute_threads(int requested);

/// Trains in this process (data mode on one rank), printing a line per epoch and a summary table to
/// `out` and writing records to options.json_path. Throws UsageError for bad options, models, data.
TrainSummary train_single_process(const TrainOptions& options, const std::vector<std::string>& argv, std::ostream& out);

/// Trains as rank comm.rank() of comm.size() in options.mode (modes/mode.h: data, tensor, pipeline,
/// hybrid) over options.grid. Rank 0 prints to `out` and writes the records; the other ranks print
/// nothing. Losses and final parameters equal single-process training with the same options up to
/// float rounding.
TrainSummary train_parallel(Comm& comm, const TrainOptions& options, const std::vector<std::string>& argv,
                            std::ostream& out);

}  // namespace cclab::train
