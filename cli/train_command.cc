// `cclab train`: the reference CNN trainers (DESIGN 3.6). This build trains in the calling process
// (one rank, data mode); the parallel modes plug in here next, on the same Model / loader / records
// (see trainers/model/model.h).
#include <iostream>
#include <memory>

#include "cclab/error.h"
#include "cclab/launch.h"
#include "commands.h"
#include "trainer.h"

namespace cclab {
namespace {

struct TrainFlags {
  train::TrainOptions options;
  int ranks = 1;
  bool no_eval = false;
  CLI::Option* epochs = nullptr;
  CLI::Option* steps = nullptr;
};

void validate(TrainFlags& flags) {
  train::TrainOptions& o = flags.options;
  static const std::vector<std::string> kModes{"data", "tensor", "pipeline", "hybrid"};
  if (std::find(kModes.begin(), kModes.end(), o.mode) == kModes.end())
    throw UsageError("unknown --mode '" + o.mode + "' (data, tensor, pipeline, hybrid)");
  if (o.mode != "data")
    throw UsageError("not implemented yet: --mode " + o.mode +
                     " (this build trains in one process: --mode data with -n 1)");
  if (flags.ranks < 1) throw UsageError("-n must be at least 1");
  if (flags.ranks != 1)
    throw UsageError("not implemented yet: -n " + std::to_string(flags.ranks) +
                     " (multi-rank training; this build trains in one process: -n 1)");
  if (detect_launch() != LaunchKind::none && launcher_world_size() != 1)
    throw UsageError("not implemented yet: training as one of " + std::to_string(launcher_world_size()) +
                     " launcher ranks (this build trains in one process)");
  if (flags.epochs->count() > 0 && flags.steps->count() > 0)
    throw UsageError("give --epochs or --steps, not both");
  if (flags.steps->count() > 0 && o.steps == 0) throw UsageError("--steps must be at least 1");
  if (flags.epochs->count() > 0 && o.epochs == 0) throw UsageError("--epochs must be at least 1");
  o.grid = {flags.ranks, 1, 1};
  o.evaluate = !flags.no_eval;
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
  command->add_option("--batch", o.batch, "Global batch size")->capture_default_str();
  command->add_option("--lr", o.learning_rate, "Learning rate of SGD")->capture_default_str();
  command->add_option("--momentum", o.momentum, "Momentum of SGD")->capture_default_str();
  command->add_option("--seed", o.seed, "Seeds initial weights, shuffling and synthetic data")->capture_default_str();
  command->add_option("--data", o.data, "fashion-mnist or synthetic:CxHxW[:N]")->capture_default_str();
  command->add_option("--data-dir", o.data_directory, "Where the Fashion-MNIST IDX files are")->capture_default_str();
  command->add_option("--json", o.json_path, "Append the epoch and train records to this file");
  command->add_option("--threads", o.threads,
                      "Compute threads (default: CCLAB_THREADS, else OMP_NUM_THREADS, else the CPUs available)")
      ->check(CLI::Range(1, 4096));
  command->add_option("--mode", o.mode, "data | tensor | pipeline | hybrid (this build: data)")->capture_default_str();
  command->add_option("-n,--ranks", flags->ranks, "Ranks (this build: 1)")->capture_default_str();
  command->add_flag("--no-eval", flags->no_eval, "Skip the test-set evaluation after each epoch");
  command->add_flag("--profile-layers", o.profile_layers, "Print the time each layer takes per step");
  return [flags, argv]() -> int {
    validate(*flags);
    train::train_single_process(flags->options, argv, std::cout);
    return 0;
  };
}

}  // namespace cclab
