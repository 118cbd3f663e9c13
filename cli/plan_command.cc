// `cclab plan`: rank every parallel strategy for a model on N ranks by simulated step time
// (DESIGN 3.10; trainers/planner/). Flags and their checks only; the planner does the work.
#include <iostream>
#include <memory>
#include <sstream>

#include "cclab/error.h"
#include "cclab/launch.h"
#include "commands.h"
#include "flag_checks.h"
#include "planner/plan_run.h"

namespace cclab {

CommandAction add_plan_command(CLI::App& app, const std::vector<std::string>& argv) {
  CLI::App* command = app.add_subcommand(
      "plan", "Predict and rank every parallel strategy for a model on N ranks (or a what-if cluster)");
  auto options = std::make_shared<train::PlanOptions>();
  auto modes = std::make_shared<std::string>();
  auto validate = std::make_shared<std::string>();
  auto ranks = std::make_shared<int>(0);
  command->add_option("--model", options->model, "lenet5, convnet, or a layer list (as cclab train)")
      ->capture_default_str();
  command->add_option("-n,--ranks", *ranks, "Ranks to plan for (this host; --cluster gives its own)")
      ->check(in_range(2, 1024));
  command->add_option("--batch", options->batch, "Global batch size")
      ->capture_default_str()
      ->check(in_range(1, 1 << 24));
  command->add_option("--threads", options->threads, "Compute threads per rank")
      ->capture_default_str()
      ->check(in_range(1, 4096));
  command->add_option("--layers", options->layers_path,
                      "Per-layer times from cclab train --profile-layers FILE (same model, batch, threads); default: "
                      "measure them now");
  command->add_option("--profile", options->profile_path,
                      "Network cost profile from cclab bench p2p --fit; default: measure it now");
  command->add_option("--strategies", *modes,
                      "Only these modes, e.g. data,pipeline (data, tensor, pipeline, hybrid, ps)");
  command->add_option("--json", options->json_path, "Append the plan records to this file");
  auto* validate_option = command
                              ->add_option("--validate", *validate,
                                           "Run the top K strategies (default 3) with cclab train and print "
                                           "measured beside predicted")
                              ->expected(0, 1);
  command->add_option("--steps", options->validate_steps, "Steps of each --validate run")
      ->capture_default_str()
      ->check(in_range(2, 100000));
  auto* repeat_option = command
                            ->add_option("--repeat", options->validate_rounds,
                                         "Rounds of --validate: the validated strategies run in turn this often, "
                                         "and each one's median run is compared")
                            ->capture_default_str()
                            ->check(in_range(1, 100));
  command->add_option("--cluster", options->cluster,
                      "What-if machines: nodes=2,ranks-per-node=4,intra-alpha-us=0.5,intra-gbps=10,inter-alpha-us=5,"
                      "inter-gbps=1.25[,compute=1][,reduce-gbps=10] (predicted only)");
  command
      ->add_option("--timeout", options->timeout_s, "Seconds a measuring or validating job's ranks may take to start")
      ->capture_default_str()
      ->check(in_range(1, 86400, false));
  return [options, modes, validate, validate_option, repeat_option, ranks, argv]() -> int {
    if (detect_launch() != LaunchKind::none) throw UsageError("cclab plan starts its own jobs: run it by hand");
    options->ranks = size_t(*ranks);
    if (options->ranks == 0 && options->cluster.empty()) throw UsageError("give -n N ranks (or --cluster)");
    std::stringstream in(*modes);
    for (std::string mode; std::getline(in, mode, ',');) options->modes.push_back(mode);
    if (validate_option->count() > 0) {
      options->validate = 3;
      if (!validate->empty()) {
        char* end = nullptr;
        const long count = std::strtol(validate->c_str(), &end, 10);
        if (*end != '\0' || count < 1 || count > 1000)
          throw UsageError("--validate takes a count of strategies (1 to 1000), not '" + *validate + "'");
        options->validate = size_t(count);
      }
    }
    if (repeat_option->count() > 0 && options->validate == 0)
      throw UsageError("--repeat repeats --validate's runs: give --validate");
    if (!options->json_path.empty()) check_output_file("--json", options->json_path);
    return train::run_plan(*options, argv, std::cout);
  };
}

}  // namespace cclab
