// `cclab train`: the reference CNN trainers (DESIGN 3.6). Data mode runs in this process for one
// rank, and as a job of N ranks (cli/job.h: -n N locally, or the ranks of mpirun/srun/env jobs)
// otherwise; `--scaling 1,2,4` runs the same training at each rank count in turn and prints a speedup
// table. Every mode (data, tensor, pipeline, hybrid) runs through the same loop (trainers/modes/mode.h);
// the grid of ranks comes from the mode, --stages and --grid.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>

#include "cclab/comm.h"
#include "cclab/error.h"
#include "cclab/launch.h"
#include "commands.h"
#include "job.h"
#include "results.h"
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
  std::string scaling;
  std::vector<int> scaling_ranks;
  std::vector<std::string> scaling_modes;  // --scaling with --mode data,tensor,...: every mode in one table
  CLI::Option* epochs = nullptr;
  CLI::Option* steps = nullptr;
};

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
  const bool fits = (o.mode == "data" && grid.tp == 1 && grid.pp == 1) || (o.mode == "tensor" && grid.tp == ranks) ||
                    (o.mode == "pipeline" && grid.tp == 1) ||
                    (o.mode == "hybrid" && grid.tp == 1 && (grid.pp > 1 || grid.dp == ranks));
  if (!fits)
    throw UsageError("--mode " + o.mode + " does not run on the grid dp=" + std::to_string(grid.dp) +
                     ",tp=" + std::to_string(grid.tp) + ",pp=" + std::to_string(grid.pp) +
                     " (data: dp; tensor: tp; pipeline: dp x pp; hybrid: dp, or dp x pp)");
  if (flags.stages > 0 && o.mode != "pipeline" && !(o.mode == "hybrid" && grid.pp > 1))
    throw UsageError("--stages is for --mode pipeline (or hybrid with a pp grid)");
  return grid;
}

void validate(TrainFlags& flags) {
  train::TrainOptions& o = flags.options;
  static const std::vector<std::string> kModes{"data", "tensor", "pipeline", "hybrid"};
  std::vector<std::string> modes;
  {
    std::stringstream in(o.mode);
    for (std::string mode; std::getline(in, mode, ',');) modes.push_back(mode);
  }
  if (modes.size() > 1 && flags.scaling.empty()) throw UsageError("several --mode values need --scaling");
  for (const std::string& mode : modes)
    if (std::find(kModes.begin(), kModes.end(), mode) == kModes.end())
      throw UsageError("unknown --mode '" + mode + "' (data, tensor, pipeline, hybrid)");
  if (modes.empty()) throw UsageError("unknown --mode '' (data, tensor, pipeline, hybrid)");
  if (o.schedule != "gpipe" && o.schedule != "1f1b")
    throw UsageError("unknown --schedule '" + o.schedule + "' (gpipe, 1f1b)");
  validate_job_flags(flags.job);
  if (o.resume && o.checkpoint_dir.empty()) throw UsageError("--resume needs --checkpoint-dir");
  if (o.checkpoint_every > 0 && o.checkpoint_dir.empty()) throw UsageError("--checkpoint-every needs --checkpoint-dir");
  if (flags.epochs->count() > 0 && flags.steps->count() > 0) throw UsageError("give --epochs or --steps, not both");
  if (flags.steps->count() > 0 && o.steps == 0) throw UsageError("--steps must be at least 1");
  if (flags.epochs->count() > 0 && o.epochs == 0) throw UsageError("--epochs must be at least 1");
  if (!(flags.bucket_mb > 0) || flags.bucket_mb > 4096) throw UsageError("--bucket-mb must be in (0, 4096]");
  o.bucket_bytes = std::max<size_t>(4, size_t(flags.bucket_mb * 1048576.0));
  if (!flags.scaling.empty()) {
    if (detect_launch() != LaunchKind::none)
      throw UsageError("--scaling starts its own jobs: run it by hand, not under a launcher");
    if (flags.job.ranks != -1) throw UsageError("give --scaling or -n, not both");
    flags.scaling_ranks = parse_rank_list(flags.scaling);
    flags.scaling_modes = modes;
    if (!o.checkpoint_dir.empty()) throw UsageError("--scaling runs several trainings: give no --checkpoint-dir");
  }
  const int ranks = detect_launch() != LaunchKind::none ? launcher_world_size() : std::max(1, flags.job.ranks);
  if (flags.scaling_ranks.empty()) o.grid = resolve_grid(flags, ranks);
  for (const std::string& mode : flags.scaling_modes) {  // each run's grid, checked up front
    TrainFlags run = flags;
    run.options.mode = mode;
    for (int scaled : flags.scaling_ranks) resolve_grid(run, scaled);
  }
  o.evaluate = !flags.no_eval;
}

// The arguments without the options that --scaling sets for each run.
std::vector<std::string> strip_arguments(const std::vector<std::string>& argv) {
  static const std::vector<std::string> kWithValue{"--scaling", "--json", "-n", "--ranks", "--mode"};
  std::vector<std::string> kept;
  for (size_t i = 0; i < argv.size(); ++i) {
    bool drop = false;
    for (const std::string& name : kWithValue) {
      if (argv[i] == name) {
        drop = true;
        ++i;  // and its value
        break;
      }
      if (argv[i].rfind(name + "=", 0) == 0 || (name == "-n" && argv[i].size() > 2 && argv[i].rfind("-n", 0) == 0 &&
                                                std::isdigit(static_cast<unsigned char>(argv[i][2])))) {
        drop = true;
        break;
      }
    }
    if (!drop) kept.push_back(argv[i]);
  }
  return kept;
}

// One `cclab train` job of `ranks` local ranks in `mode`: its exit status, and its train record in
// `train_record`.
int run_scaled(const TrainFlags& flags, const std::vector<std::string>& argv, const std::string& mode, int ranks,
               nlohmann::json& train_record) {
  const std::string scratch =
      (std::filesystem::temp_directory_path() / ("cclab_scaling_" + std::to_string(getpid()) + ".jsonl")).string();
  std::filesystem::remove(scratch);
  std::vector<std::string> run_argv = strip_arguments(argv);
  for (const std::string& extra :
       {std::string("--mode"), mode, std::string("-n"), std::to_string(ranks), std::string("--json"), scratch})
    run_argv.push_back(extra);
  std::cout << "# --scaling: " << mode << " mode, " << ranks << (ranks == 1 ? " rank" : " ranks") << "\n" << std::flush;
  LocalLaunchOptions launch;
  launch.ranks = ranks;
  launch.timeout_s = flags.job.timeout_s;
  launch.bind = flags.job.bind == "core";
  const int status = launch_local(run_argv, launch);
  if (status == 0)
    for (const nlohmann::json& record : read_results(scratch))
      if (record.value("kind", "") == "train") train_record = record;
  std::filesystem::remove(scratch);
  if (status == 0 && train_record.is_null())
    throw Error("the " + std::to_string(ranks) + "-rank run wrote no train record");
  return status;
}

// --scaling: one local job per mode and rank count (this program relaunched with -n k), then the
// table. One rank is single-process training whatever the mode: it runs once, as every mode's baseline.
int run_scaling(const TrainFlags& flags, const std::vector<std::string>& argv) {
  ResultWriter user_json(flags.options.json_path);
  std::vector<nlohmann::json> records;
  std::optional<double> base;
  for (const std::string& mode : flags.scaling_modes)
    for (int ranks : flags.scaling_ranks) {
      if (ranks == 1 && base) continue;
      nlohmann::json record;
      if (const int status = run_scaled(flags, argv, mode, ranks, record); status != 0) return status;
      records.push_back(std::move(record));
      if (ranks == 1) base = records.back()["images_per_s"].get<double>();
    }
  if (!base) base = records.front()["images_per_s"].get<double>();  // no 1-rank run: over the first
  const auto& first = records.front();
  std::cout << "# scaling: " << first["model"].get<std::string>() << ", global batch " << first["global_batch"] << ", "
            << first["threads"] << " thread(s) per rank; speedup in images/s over "
            << (first["ranks"] == 1 ? "1 rank" : "the first run")
            << "\n# time per step in ms (compute / comm / idle); bytes sent per step and rank (max over ranks) by "
               "phase, measured, and the total predicted by DESIGN 3.7\n";
  char line[512];
  std::snprintf(line, sizeof line, "%-8s %5s %9s %9s %7s %8s %8s %7s %7s %11s %11s %11s %11s\n", "mode", "ranks",
                "grid", "images/s", "speedup", "step_ms", "compute", "comm", "idle", "forward_B", "backward_B",
                "grad_sync_B", "predicted_B");
  std::cout << line;
  for (nlohmann::json& record : records) {
    const double speedup = record["images_per_s"].get<double>() / *base;
    record["speedup"] = speedup;
    const auto& time = record["step_time_s"];
    const auto& phases = record["phases"];
    const auto sent = [&](const char* phase) { return phases[phase]["sent_bytes_per_rank"].get<double>(); };
    const auto& predicted = record["predicted_sent_bytes_per_rank"];
    const std::string grid =
        record["grid"]["dp"].dump() + "x" + record["grid"]["tp"].dump() + "x" + record["grid"]["pp"].dump();
    const std::string mode = record["ranks"] == 1 ? "single" : record["mode"].get<std::string>();
    std::snprintf(line, sizeof line, "%-8s %5d %9s %9.0f %7.2f %8.2f %8.2f %7.2f %7.2f %11.0f %11.0f %11.0f %11s\n",
                  mode.c_str(), record["ranks"].get<int>(), grid.c_str(), record["images_per_s"].get<double>(), speedup,
                  time["total"].get<double>() * 1e3, time["compute"].get<double>() * 1e3,
                  time["comm"].get<double>() * 1e3, time["idle"].get<double>() * 1e3, sent("forward"), sent("backward"),
                  sent("grad_sync"),
                  predicted.is_number() ? std::to_string(std::llround(predicted.get<double>())).c_str() : "-");
    std::cout << line;
    user_json.write(record);
  }
  std::cout << std::flush;
  return 0;
}

}  // namespace

CommandAction add_train_command(CLI::App& app, const std::vector<std::string>& argv) {
  CLI::App* command = app.add_subcommand("train", "Train a reference CNN and report loss, accuracy and throughput");
  auto flags = std::make_shared<TrainFlags>();
  train::TrainOptions& o = flags->options;
  command->add_option("--model", o.model, "lenet5, convnet, or a layer list such as conv5x5:32,relu,pool2,fc:10")
      ->capture_default_str();
  flags->epochs = command->add_option("--epochs", o.epochs, "Passes over the training set")->capture_default_str();
  flags->steps = command->add_option("--steps", o.steps, "Train this many steps instead of whole epochs");
  command->add_option("--batch", o.batch, "Global batch size (split over the data-parallel ranks)")
      ->capture_default_str();
  command->add_option("--lr", o.learning_rate, "Learning rate of SGD")->capture_default_str();
  command->add_option("--momentum", o.momentum, "Momentum of SGD")->capture_default_str();
  command->add_option("--seed", o.seed, "Seeds initial weights, shuffling and synthetic data")->capture_default_str();
  command->add_option("--data", o.data, "fashion-mnist or synthetic:CxHxW[:N]")->capture_default_str();
  command->add_option("--data-dir", o.data_directory, "Where the Fashion-MNIST IDX files are")->capture_default_str();
  command->add_option("--json", o.json_path, "Append the epoch and train records to this file");
  command
      ->add_option("--threads", o.threads,
                   "Compute threads per rank (default: CCLAB_THREADS, else OMP_NUM_THREADS, else the CPUs "
                   "available to the rank)")
      ->check(CLI::Range(1, 4096));
  command->add_option("--mode", o.mode, "data | tensor | pipeline | hybrid (with --scaling: several, e.g. data,hybrid)")
      ->capture_default_str();
  command->add_option("--grid", flags->grid,
                      "Ranks per dimension, e.g. dp=2,pp=2 (hybrid: data x pipeline); default from --mode");
  command->add_option("--stages", flags->stages, "Pipeline stages (default: the rank count); dp = ranks / stages");
  command
      ->add_option("--microbatches", o.microbatches,
                   "Pipeline micro-batches per global batch (0: 4 per stage, at most the batch)")
      ->capture_default_str();
  command->add_option("--schedule", o.schedule, "Pipeline schedule: gpipe | 1f1b")->capture_default_str();
  command
      ->add_option("--balance", o.balance,
                   "Pipeline layers per stage, e.g. 4,5 (default: balanced by measured layer times)")
      ->delimiter(',');
  add_job_flags(*command, flags->job);
  command
      ->add_option("--bucket-mb", flags->bucket_mb,
                   "Gradient bucket size in MiB of data-parallel gradient sums (data, hybrid, dp x pp grid); layers "
                   "are not split")
      ->capture_default_str();
  command->add_option(
      "--scaling", flags->scaling,
      "Run at each of these rank counts (e.g. 1,2,4), in each --mode given, and print one speedup table");
  command->add_flag("--no-eval", flags->no_eval, "Skip the test-set evaluation after each epoch");
  command->add_option(
      "--checkpoint-dir", o.checkpoint_dir,
      "Write DIR/checkpoint.bin (parameters, momentum, step; one checkpoint.rankR.bin per rank in the tensor, "
      "pipeline and hybrid modes) at the end of each epoch and run");
  command
      ->add_option("--checkpoint-every", o.checkpoint_every,
                   "Also write a checkpoint every K steps (0: only at epoch and run ends)")
      ->capture_default_str();
  command->add_flag("--resume", o.resume,
                    "Continue from DIR/checkpoint.bin (--steps/--epochs stay the total of the whole run)");
  command->add_flag("--profile-layers", o.profile_layers, "Print the time each layer takes per step");
  return [flags, argv]() -> int {
    validate(*flags);
    if (!flags->scaling_ranks.empty()) return run_scaling(*flags, argv);
    if (flags->options.grid.ranks() == 1) {
      // One rank: train in this process (also as the only rank of a launcher's job).
      train::train_single_process(flags->options, argv, std::cout);
      return 0;
    }
    return run_job(flags->job, argv, false,
                   [flags, argv](Comm& comm) { train::train_parallel(comm, flags->options, argv, std::cout); });
  };
}

}  // namespace cclab
