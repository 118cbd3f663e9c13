// Running a command as a job of N ranks (DESIGN 3.1), shared by every multi-rank subcommand:
// by hand with -n N it becomes the supervisor of N local ranks; as a rank it joins the job,
// builds the Comm and runs the command's body.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cclab/comm.h"

namespace cclab {

struct JobFlags {
  int ranks = -1;  // -n; -1: not given
  double timeout_s = 60;
  std::string bind = "core";
  int ranks_per_node = 0;
  std::string transport = "ucx";
  std::string inter_transport;  // between nodes; empty: the same as `transport`
  int max_local_ranks = 0;      // most ranks -n may start on this host; 0: default_max_local_ranks()
};

/// How many ranks -n may start on one host unless --max-local-ranks says more: 64, or 4 per CPU
/// this process may use where that is more. Each rank is a process with its own UCX context.
int default_max_local_ranks();

/// Adds -n, --timeout, --bind, --ranks-per-node, --transport, --inter-transport and
/// --max-local-ranks to `command`.
void add_job_flags(CLI::App& command, JobFlags& flags);

/// UsageError when starting `ranks` processes on this host (for `flag`, e.g. "-n") passes the bound
/// of --max-local-ranks (default_max_local_ranks()).
void check_local_ranks(int ranks, const JobFlags& flags, const std::string& flag);

/// Checks the flags before any rank starts (UsageError on bad input).
void validate_job_flags(const JobFlags& flags);

/// Supervises N local ranks (through mpirun when `needs_mpirun`) or, as a rank, joins the job
/// and runs `body`, which says whether the results passed their checks. Returns the process exit
/// status: 0; 1 on a run-time failure (the message names the rank) or when the results failed a
/// check (rank 0 printed which); 2 on bad input.
int run_job(const JobFlags& flags, const std::vector<std::string>& argv, bool needs_mpirun,
            const std::function<bool(Comm&)>& body);

/// Runs the job's -n ranks as threads of this process, each with its own Comm (for ranks that
/// share one device: --transport device-loopback), and returns the exit status as run_job does.
/// The first rank that fails says why; the others' waits end at once.
int run_job_in_threads(const JobFlags& flags, const std::function<bool(Comm&)>& body);

}  // namespace cclab
