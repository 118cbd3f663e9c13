// Subcommand wiring: each add_* registers a subcommand and returns the action to run if chosen.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace cclab {

/// Runs the chosen subcommand; returns the process exit status.
using CommandAction = std::function<int()>;

/// `cclab info`
CommandAction add_info_command(CLI::App& app);
/// `cclab bench allreduce ...`; `argv` is the whole command line (for relaunching ranks).
CommandAction add_bench_commands(CLI::App& app, const std::vector<std::string>& argv);
/// `cclab compare BASE NEW`
CommandAction add_compare_command(CLI::App& app);
/// `cclab report FILE...`
CommandAction add_report_command(CLI::App& app);
/// `cclab suite run FILE`
CommandAction add_suite_command(CLI::App& app);
/// `cclab train ...`; `argv` is the whole command line (recorded in results; for relaunching ranks).
CommandAction add_train_command(CLI::App& app, const std::vector<std::string>& argv);
/// `cclab plan ...`; `argv` is the whole command line (recorded; relaunches cclab to measure and validate).
CommandAction add_plan_command(CLI::App& app, const std::vector<std::string>& argv);

std::string version_string();

}  // namespace cclab
