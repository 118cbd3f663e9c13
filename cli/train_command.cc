// `cclab train`: the reference CNN trainers (DESIGN 3.6). Data mode runs in this process for one
// rank, and as a job of N ranks (cli/job.h: -n N locally, or the ranks of mpirun/srun/env jobs)
// otherwise; `--scaling 1,2,4` runs the same training at each rank count in turn and prints a speedup
// table (trainers/scaling.h). Every mode (data, tensor, pipeline, hybrid, ps, fedavg) runs through the same loop
// (trainers/modes/mode.h); the grid of ranks comes from the mode, --stages and --grid.
#include <iostream>
#include <memory>
#include <sstream>

#include "backends/cuda/cuda_backend.h"
#include "cclab/comm.h"
#include "cclab/error.h"
#include "cclab/launch.h"
#include "checkpoint.h"
#include "commands.h"
#include "flag_checks.h"
#include "job.h"
#include "scaling.h"
#include "trainer.h"

namespace cclab {
namespace {

struct TrainFlags {
  train::TrainOptions options;
  JobFlags job;
  bool no_eval = false;
  double bucket_mb = 1.0;
  std::string grid;
  size_t stages = 0;
  std::string servers = "colocated";  // --mode ps: colocated, or a count of dedicated server ranks
  std::string straggler;              // RANK:FACTOR
  std::string scaling;
  std::vector<int> scaling_ranks;
  std::vector<std::string> scaling_modes;  // --scaling with --mode data,tensor,...: every mode in one table
  int scaling_rounds = 1;                  // --repeat
  CLI::Option* repeat = nullptr;
  CLI::Option* epochs = nullptr;
  CLI::Option* steps = nullptr;
  std::vector<CLI::Option*> fedavg_options;  // --local-steps, --participation, --drop, --shards, --round-deadline
  CLI::Option* profile_layers = nullptr;
};

// Bounds of the training flags: far beyond any real run, short of what wraps or never ends.
constexpr double kMostEpochs = 1e6, kMostSteps = 1e12, kLargestBatch = 1 << 24;

std::vector<int> parse_rank_list(const std::string& text) {
  std::vector<int> ranks;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    char* end = nullptr;
    const long value = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || value < 1 || value > 1024)
      throw UsageError("--scaling takes rank counts such as 1,2,4, not '" + text + "'");
    ranks.push_back(int(value));
  }
  if (ranks.empty()) throw UsageError("--scaling takes rank counts such as 1,2,4");
  return ranks;
}

// "dp=2,pp=2" (any of dp, tp, pp; the others 1).
train::Grid parse_grid(const std::string& text) {
  train::Grid grid;
  std::stringstream in(text);
  std::string item;
  const auto bad = [&] {
    return UsageError("--grid takes dimensions such as dp=2,pp=2 (dp, tp, pp), not '" + text + "'");
  };
  while (std::getline(in, item, ',')) {
    const size_t equals = item.find('=');
    if (equals == std::string::npos) throw bad();
    const std::string name = item.substr(0, equals), value = item.substr(equals + 1);
    char* end = nullptr;
    const long parsed = std::strtol(value.c_str(), &end, 10);
    if (value.empty() || *end != '\0' || parsed < 1 || parsed > 1024) throw bad();
    if (name == "dp")
      grid.dp = int(parsed);
    else if (name == "tp")
      grid.tp = int(parsed);
    else if (name == "pp")
      grid.pp = int(parsed);
    else
      throw bad();
  }
  return grid;
}

// --servers (ps and fedavg), --sync, --staleness, --straggler (ps only): each within its range.
void validate_parameter_server_flags(TrainFlags& flags, const std::vector<std::string>& modes) {
  train::TrainOptions& o = flags.options;
  const bool ps = std::find(modes.begin(), modes.end(), "ps") != modes.end();
  const bool fedavg = std::find(modes.begin(), modes.end(), "fedavg") != modes.end();
  const bool given = o.ps_sync != "sync" || o.staleness != 1 || !flags.straggler.empty();
  if (given && !ps) throw UsageError("--sync, --staleness and --straggler are for --mode ps");
  if (flags.servers != "colocated" && !ps && !fedavg) throw UsageError("--servers is for --mode ps and fedavg");
  if (o.ps_sync != "sync" && o.ps_sync != "async" && o.ps_sync != "ssp")
    throw UsageError("unknown --sync '" + o.ps_sync + "' (sync, async, ssp)");
  if (o.staleness != 1 && o.ps_sync != "ssp") throw UsageError("--staleness bounds --sync ssp");
  if (flags.servers != "colocated") {
    char* end = nullptr;
    const long servers = std::strtol(flags.servers.c_str(), &end, 10);
    if (flags.servers.empty() || *end != '\0' || servers < 1 || servers > 1024)
      throw UsageError("--servers takes colocated or a count of server ranks (1 or more), not '" + flags.servers + "'");
    o.ps_servers = size_t(servers);
  }
  if (!flags.straggler.empty()) {
    const size_t colon = flags.straggler.find(':');
    char* rank_end = nullptr;
    char* factor_end = nullptr;
    const long rank = colon == std::string::npos ? -1 : std::strtol(flags.straggler.c_str(), &rank_end, 10);
    const double factor =
        colon == std::string::npos ? 0 : std::strtod(flags.straggler.c_str() + colon + 1, &factor_end);
    if (colon == std::string::npos || rank_end != flags.straggler.c_str() + colon || *factor_end != '\0' || rank < 0 ||
        rank > 1 << 20 || !(factor >= 1) || factor > 1000)
      throw UsageError("--straggler takes RANK:FACTOR with FACTOR in [1, 1000], e.g. 1:3, not '" + flags.straggler +
                       "'");
    o.straggler_rank = int(rank);
    o.straggler_factor = factor;
  }
}

// --local-steps, --participation, --drop, --shards, --round-deadline: for --mode fedavg only, each in its
// range.
void validate_federated_averaging_flags(const TrainFlags& flags, const std::vector<std::string>& modes) {
  const train::TrainOptions& o = flags.options;
  const bool fedavg = std::find(modes.begin(), modes.end(), "fedavg") != modes.end();
  for (const CLI::Option* option : flags.fedavg_options)
    if (option->count() > 0 && !fedavg) throw UsageError(option->get_name() + " is for --mode fedavg");
  if (o.local_steps < 1 || o.local_steps > kMostSteps) throw UsageError("--local-steps must be at least 1");
  if (!(o.participation > 0 && o.participation <= 1))
    throw UsageError("--participation is a fraction of the workers in (0, 1]");
  if (!(o.drop >= 0 && o.drop < 1)) throw UsageError("--drop is a probability in [0, 1)");
  if (o.shards != "iid" && o.shards != "label-skew")
    throw UsageError("unknown --shards '" + o.shards + "' (iid, label-skew)");
  if (!(o.round_deadline_s > 0 && o.round_deadline_s <= 3600))
    throw UsageError("--round-deadline must be in (0, 3600] seconds");
  if (fedavg && !o.checkpoint_dir.empty())
    throw UsageError("--mode fedavg writes no checkpoints: its rounds and servers' momentum are not saved");
}

// The grid of a run of `ranks` ranks. One rank is single-process training whatever the mode (the
// baseline of --scaling). Otherwise --grid as given, or the mode's: data dp = ranks, tensor tp =
// ranks, pipeline pp = --stages (default ranks) with dp = ranks / stages, hybrid dp = ranks (data-
// parallel convolutions, the fully connected layers split over the same ranks).
train::Grid resolve_grid(const TrainFlags& flags, int ranks) {
  const train::TrainOptions& o = flags.options;
  if (ranks == 1) return {};
  train::Grid grid;
  if (!flags.grid.empty()) {
    grid = parse_grid(flags.grid);
    if (flags.stages > 0 && size_t(grid.pp) != flags.stages) throw UsageError("--stages and --grid pp= disagree");
  } else if (o.mode == "tensor") {
    grid.tp = ranks;
  } else if (o.mode == "pipeline") {
    const size_t stages = flags.stages > 0 ? flags.stages : size_t(ranks);
    if (size_t(ranks) % stages != 0)
      throw UsageError("--stages " + std::to_string(stages) + " does not divide the " + std::to_string(ranks) +
                       " ranks");
    grid = {ranks / int(stages), 1, int(stages)};
  } else {
    grid.dp = ranks;
  }
  if (grid.ranks() != ranks)
    throw UsageError("--grid " + flags.grid + " has " + std::to_string(grid.ranks()) + " ranks, the job " +
                     std::to_string(ranks));
  const bool fits = ((o.mode == "data" || o.mode == "ps" || o.mode == "fedavg") && grid.tp == 1 && grid.pp == 1) ||
                    (o.mode == "tensor" && grid.tp == ranks) || (o.mode == "pipeline" && grid.tp == 1) ||
                    (o.mode == "hybrid" && grid.tp == 1 && (grid.pp > 1 || grid.dp == ranks));
  if (!fits)
    throw UsageError("--mode " + o.mode + " does not run on the grid dp=" + std::to_string(grid.dp) +
                     ",tp=" + std::to_string(grid.tp) + ",pp=" + std::to_string(grid.pp) +
                     " (data, ps: dp; tensor: tp; pipeline: dp x pp; hybrid: dp, or dp x pp)");
  if (flags.stages > 0 && o.mode != "pipeline" && !(o.mode == "hybrid" && grid.pp > 1))
    throw UsageError("--stages is for --mode pipeline (or hybrid with a pp grid)");
  return grid;
}

void validate(TrainFlags& flags) {
  train::TrainOptions& o = flags.options;
  static const std::vector<std::string> kModes{"data", "tensor", "pipeline", "hybrid", "ps", "fedavg"};
  std::vector<std::string> modes;
  {
    std::stringstream in(o.mode);
    for (std::string mode; std::getline(in, mode, ',');) modes.push_back(mode);
  }
  if (modes.size() > 1 && flags.scaling.empty()) throw UsageError("several --mode values need --scaling");
  for (const std::string& mode : modes)
    if (std::find(kModes.begin(), kModes.end(), mode) == kModes.end())
      throw UsageError("unknown --mode '" + mode + "' (data, tensor, pipeline, hybrid, ps, fedavg)");
  if (modes.empty()) throw UsageError("unknown --mode '' (data, tensor, pipeline, hybrid, ps, fedavg)");
  validate_parameter_server_flags(flags, modes);
  validate_federated_averaging_flags(flags, modes);
  if (o.schedule != "gpipe" && o.schedule != "1f1b")
    throw UsageError("unknown --schedule '" + o.schedule + "' (gpipe, 1f1b)");
  if (o.device != "cpu" && o.device != "cuda") throw UsageError("unknown --device '" + o.device + "' (cpu, cuda)");
  if (o.device == "cuda")
    if (const std::string why = train::cuda_training_unavailable_reason(); !why.empty())
      throw UsageError("--device cuda: " + why);
  validate_job_flags(flags.job);
  if (o.resume && o.checkpoint_dir.empty()) throw UsageError("--resume needs --checkpoint-dir");
  if (o.checkpoint_every > 0 && o.checkpoint_dir.empty()) throw UsageError("--checkpoint-every needs --checkpoint-dir");
  if (flags.epochs->count() > 0 && flags.steps->count() > 0) throw UsageError("give --epochs or --steps, not both");
  if (!(flags.bucket_mb > 0) || flags.bucket_mb > 4096) throw UsageError("--bucket-mb must be in (0, 4096]");
  o.bucket_bytes = std::max<size_t>(4, size_t(flags.bucket_mb * 1048576.0));
  if (!flags.scaling.empty()) {
    if (detect_launch() != LaunchKind::none)
      throw UsageError("--scaling starts its own jobs: run it by hand, not under a launcher");
    if (flags.job.ranks != -1) throw UsageError("give --scaling or -n, not both");
    flags.scaling_ranks = parse_rank_list(flags.scaling);
    for (int scaled : flags.scaling_ranks) check_local_ranks(scaled, flags.job, "--scaling");
    flags.scaling_modes = modes;
    if (!o.checkpoint_dir.empty()) throw UsageError("--scaling runs several trainings: give no --checkpoint-dir");
    if (!o.trace_path.empty()) throw UsageError("--scaling runs several trainings: trace one with -n and no --scaling");
  } else if (flags.repeat->count() > 0) {
    throw UsageError("--repeat repeats --scaling's runs: give --scaling");
  }
  const int ranks = detect_launch() != LaunchKind::none ? launcher_world_size() : std::max(1, flags.job.ranks);
  if (flags.scaling_ranks.empty()) o.grid = resolve_grid(flags, ranks);
  for (const std::string& mode : flags.scaling_modes) {  // each run's grid, checked up front
    TrainFlags run = flags;
    run.options.mode = mode;
    for (int scaled : flags.scaling_ranks) resolve_grid(run, scaled);
  }
  o.evaluate = !flags.no_eval;
  o.profile_layers = flags.profile_layers->count() > 0;
  if (!o.profile_layers_path.empty()) {
    if (!flags.scaling.empty() || o.grid.ranks() != 1)
      throw UsageError("--profile-layers FILE times the whole model on one rank: give no -n, --scaling or launcher");
    check_output_file("--profile-layers", o.profile_layers_path);
  }
  // Where results go is checked before any work, so a bad path does not cost a training run.
  if (!o.json_path.empty()) check_output_file("--json", o.json_path);
  if (!o.trace_path.empty()) check_output_file("--trace", o.trace_path);
  if (!o.checkpoint_dir.empty()) {
    check_output_directory("--checkpoint-dir", o.checkpoint_dir);
    train::check_checkpoint_directory(o.checkpoint_dir);
  }
}

// The --scaling runs of `flags` (validated).
train::ScalingOptions scaling_options(const TrainFlags& flags) {
  train::ScalingOptions scaling;
  scaling.modes = flags.scaling_modes;
  scaling.ranks = flags.scaling_ranks;
  scaling.rounds = flags.scaling_rounds;
  scaling.json_path = flags.options.json_path;
  scaling.timeout_s = flags.job.timeout_s;
  scaling.bind = flags.job.bind == "core";
  return scaling;
}

}  // namespace

CommandAction add_train_command(CLI::App& app, const std::vector<std::string>& argv) {
  CLI::App* command = app.add_subcommand("train", "Train a reference CNN and report loss, accuracy and throughput");
  auto flags = std::make_shared<TrainFlags>();
  train::TrainOptions& o = flags->options;
  command->add_option("--model", o.model, "lenet5, convnet, or a layer list such as conv5x5:32,relu,pool2,fc:10")
      ->capture_default_str();
  flags->epochs = command->add_option("--epochs", o.epochs, "Passes over the training set")
                      ->capture_default_str()
                      ->check(in_range(1, kMostEpochs));
  flags->steps = command->add_option("--steps", o.steps, "Train this many steps instead of whole epochs")
                     ->check(in_range(1, kMostSteps));
  command->add_option("--batch", o.batch, "Global batch size (split over the data-parallel ranks)")
      ->capture_default_str()
      ->check(in_range(1, kLargestBatch));
  command->add_option("--lr", o.learning_rate, "Learning rate of SGD")
      ->capture_default_str()
      ->check(in_range(0, 1e6, false));
  command->add_option("--momentum", o.momentum, "Momentum of SGD")->capture_default_str()->check(in_range(0, 1, false));
  command->add_option("--seed", o.seed, "Seeds initial weights, shuffling and synthetic data")->capture_default_str();
  command->add_option("--data", o.data, "fashion-mnist or synthetic:CxHxW[:N]")->capture_default_str();
  command->add_option("--data-dir", o.data_directory, "Where the Fashion-MNIST IDX files are")->capture_default_str();
  command->add_option("--json", o.json_path, "Append the epoch and train records to this file");
  command->add_option("--trace", o.trace_path,
                      "Write Chrome trace events: every rank's load, forward, backward, update, comm and idle "
                      "spans per step (pipeline bubbles too)");
  command
      ->add_option("--threads", o.threads,
                   "Compute threads per rank (default: CCLAB_THREADS, else OMP_NUM_THREADS, else the CPUs "
                   "available to the rank)")
      ->check(in_range(1, 4096));
  command
      ->add_option("--device", o.device,
                   "cpu (oneDNN) | cuda (cuDNN and cuBLAS on the rank's GPU: the i-th rank of a node uses GPU i "
                   "mod the GPUs it sees)")
      ->capture_default_str();
  command->add_option("--mode", o.mode,
                      "data | tensor | pipeline | hybrid | ps | fedavg (with --scaling: several, e.g. data,ps)")
      ->capture_default_str();
  command->add_option("--grid", flags->grid,
                      "Ranks per dimension, e.g. dp=2,pp=2 (hybrid: data x pipeline); default from --mode");
  command->add_option("--stages", flags->stages, "Pipeline stages (default: the rank count); dp = ranks / stages")
      ->check(in_range(1, 1 << 20));
  command
      ->add_option("--microbatches", o.microbatches,
                   "Pipeline micro-batches per global batch (0: 4 per stage, at most the batch)")
      ->capture_default_str()
      ->check(in_range(0, kLargestBatch));
  command->add_option("--schedule", o.schedule, "Pipeline schedule: gpipe | 1f1b")->capture_default_str();
  command
      ->add_option("--servers", flags->servers,
                   "Parameter server: colocated (every rank also serves a range), or S dedicated server ranks "
                   "(the last S)")
      ->capture_default_str();
  command->add_option("--sync", o.ps_sync, "Parameter server consistency: sync | async | ssp")->capture_default_str();
  command->add_option("--staleness", o.staleness, "ssp: steps a worker may run ahead of the slowest")
      ->capture_default_str()
      ->check(in_range(0, 1 << 20));
  flags->fedavg_options = {
      command->add_option("--local-steps", o.local_steps, "fedavg: local steps per round (1)"),
      command->add_option("--participation", o.participation, "fedavg: fraction of the workers in a round (1)"),
      command->add_option("--drop", o.drop, "fedavg: probability that a participant drops out of a round (0)"),
      command->add_option("--shards", o.shards,
                          "fedavg: iid, or label-skew (worker w sees the classes c with c mod workers = w)"),
      command->add_option("--round-deadline", o.round_deadline_s,
                          "fedavg: seconds a server waits for the others after a round's first upload (0.25)")};
  command->add_option("--straggler", flags->straggler,
                      "RANK:FACTOR: that parameter-server worker computes FACTOR times slower");
  command
      ->add_option("--balance", o.balance,
                   "Pipeline layers per stage, e.g. 4,5 (default: balanced by measured layer times)")
      ->delimiter(',')
      ->check(in_range(1, 1 << 20));
  add_job_flags(*command, flags->job);
  command
      ->add_option("--bucket-mb", flags->bucket_mb,
                   "Gradient bucket size in MiB of data-parallel gradient sums (data, hybrid, dp x pp grid); layers "
                   "are not split")
      ->capture_default_str();
  command->add_option(
      "--scaling", flags->scaling,
      "Run at each of these rank counts (e.g. 1,2,4), in each --mode given, and print one speedup table");
  flags->repeat = command
                      ->add_option("--repeat", flags->scaling_rounds,
                                   "Rounds of --scaling: every run in turn this often; the table shows each one's "
                                   "median run and its median speedup over the same round's 1-rank run (else "
                                   "its first)")
                      ->capture_default_str()
                      ->check(in_range(1, 100));
  command->add_flag("--no-eval", flags->no_eval, "Skip the test-set evaluation after each epoch");
  command->add_option(
      "--checkpoint-dir", o.checkpoint_dir,
      "Write DIR/checkpoint.bin (parameters, momentum, step; one checkpoint.rankR.bin per rank in the tensor, "
      "pipeline, hybrid and ps modes) at the end of each epoch and run");
  command
      ->add_option("--checkpoint-every", o.checkpoint_every,
                   "Also write a checkpoint every K steps (0: only at epoch and run ends)")
      ->capture_default_str()
      ->check(in_range(0, kMostSteps));
  command->add_flag("--resume", o.resume,
                    "Continue from DIR/checkpoint.bin (--steps/--epochs stay the total of the whole run)");
  flags->profile_layers = command
                              ->add_option("--profile-layers", o.profile_layers_path,
                                           "Print the time each layer takes per step; with FILE (one rank) also "
                                           "write them there for cclab plan --layers")
                              ->expected(0, 1);
  return [flags, argv]() -> int {
    validate(*flags);
    if (!flags->scaling_ranks.empty()) return train::run_scaling(scaling_options(*flags), argv, std::cout);
    if (flags->options.grid.ranks() == 1) {
      // One rank: train in this process (also as the only rank of a launcher's job).
      train::train_single_process(flags->options, argv, std::cout);  // a diverged loss throws (exit 1)
      return 0;
    }
    return run_job(flags->job, argv, false, [flags, argv](Comm& comm) {
      train::train_parallel(comm, flags->options, argv, std::cout);
      return true;
    });
  };
}

}  // namespace cclab
