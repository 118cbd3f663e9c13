// cclab: parse the command line, pick a subcommand, map errors to exit statuses
// (0 ok, 1 run-time failure, 2 bad input).
#include <iostream>

#include "cclab/error.h"
#include "commands.h"
#include "nccl_tests_habits.h"

namespace {

// "cclab bench allreduce --help": the help of the deepest subcommand `args` names.
std::string help_command(CLI::App& app, const std::vector<std::string>& args) {
  std::string command = "cclab";
  CLI::App* current = &app;
  for (size_t i = 1; i < args.size(); ++i) {
    CLI::App* next = nullptr;
    for (CLI::App* sub : current->get_subcommands({}))
      if (sub->get_name() == args[i]) next = sub;
    if (next == nullptr) continue;
    command += " " + args[i];
    current = next;
  }
  return command + " --help";
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  CLI::App app{"cclab: benchmark collective communication and parallel training", "cclab"};
  app.set_version_flag("--version", cclab::version_string());
  app.require_subcommand(1);
  std::vector<std::pair<CLI::App*, cclab::CommandAction>> commands;
  try {
    cclab::CommandAction info = cclab::add_info_command(app);
    cclab::CommandAction bench = cclab::add_bench_commands(app, args);
    cclab::CommandAction train = cclab::add_train_command(app, args);
    cclab::CommandAction plan = cclab::add_plan_command(app, args);
    cclab::CommandAction compare = cclab::add_compare_command(app);
    cclab::CommandAction report = cclab::add_report_command(app);
    cclab::CommandAction suite = cclab::add_suite_command(app);
    app.parse(argc, argv);
    for (CLI::App* chosen : app.get_subcommands()) {
      if (chosen->get_name() == "info") return info();
      if (chosen->get_name() == "bench") return bench();
      if (chosen->get_name() == "train") return train();
      if (chosen->get_name() == "plan") return plan();
      if (chosen->get_name() == "compare") return compare();
      if (chosen->get_name() == "report") return report();
      if (chosen->get_name() == "suite") return suite();
    }
    return 2;
  } catch (const CLI::CallForHelp& help) {
    return app.exit(help);
  } catch (const CLI::CallForAllHelp& help) {
    return app.exit(help);
  } catch (const CLI::CallForVersion& version) {
    return app.exit(version);
  } catch (const CLI::ParseError& error) {
    std::cerr << "cclab: error: " << error.what() << cclab::nccl_tests_hint(args) << " (see '"
              << help_command(app, args) << "')\n";
    return 2;
  } catch (const cclab::UsageError& error) {
    std::cerr << "cclab: error: " << error.what() << "\n";
    return 2;
  } catch (const std::exception& error) {
    std::cerr << "cclab: " << error.what() << "\n";
    return 1;
  }
}
