// --scaling of `cclab train`: the same training run as local jobs of several rank counts, in one or
// several modes, followed by one table of their speedups and per-step times and traffic.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace cclab::train {

struct ScalingOptions {
  std::vector<std::string> modes;  // --mode values, each run at every rank count
  std::vector<int> ranks;          // rank counts, in order
  std::string json_path;           // where the train records go, with their speedups (empty: nowhere)
  double timeout_s = 60;           // how long each job's ranks may take to rendezvous
  bool bind = true;                // pin each job's ranks to their own cores
  int rounds = 1;                  // --repeat: every run in turn this often
};

/// Relaunches this program (`argv`: its `cclab train` command line, whose --scaling, --json, -n,
/// --ranks and --mode each run replaces) as one local job per mode and rank count, then prints the
/// table to `out`. One rank is single-process training whatever the mode: it runs once, as every
/// mode's baseline. With `rounds` > 1 the runs repeat in turn, round after round, and each row is
/// the run's median round (by images/s) with the median of its speedups over the same round's
/// baseline, so that a slow minute of a shared machine falls on both sides of a ratio. Returns the
/// exit status of the first job that fails, else 0.
int run_scaling(const ScalingOptions& options, const std::vector<std::string>& argv, std::ostream& out);

}  // namespace cclab::train
