// Becoming N ranks (DESIGN 3.1): the local supervised launcher, and joining a job that mpirun,
// srun or plain environment variables started.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cclab/bootstrap.h"

namespace cclab {

/// How this process was started.
enum class LaunchKind {
  none,   // by hand: no launcher around us; `-n N` makes us the supervisor of N local ranks
  local,  // a rank started by cclab's own local launcher
  mpi,    // a rank of an Open MPI job (mpirun / OMPI_COMM_WORLD_* variables)
  env,    // a rank rendezvousing through CCLAB_RANK/CCLAB_WORLD_SIZE/CCLAB_STORE or Slurm variables
};

/// Exit statuses beside 0, 1 (a run-time failure, naming the rank) and 2 (bad input): a run that
/// completed but whose results failed a check (wrong elements, --min-busbw, a NaN loss) exits
/// with kChecksFailedExitStatus. A rank of the local launcher exits with kRankChecksFailedExitStatus
/// instead, so the supervisor tells it from a failed rank: it lets the other ranks finish and exits
/// with kChecksFailedExitStatus itself.
inline constexpr int kChecksFailedExitStatus = 1;
inline constexpr int kRankChecksFailedExitStatus = 99;  // no other exit of a rank uses it

/// Looks at the environment only; starts nothing.
LaunchKind detect_launch();
/// World size announced by the launcher, or 0 under LaunchKind::none.
int launcher_world_size();

struct LocalLaunchOptions {
  int ranks = 1;
  double timeout_s = 60;       // how long ranks may take to rendezvous
  bool bind = true;            // pin rank i to its own core(s) when ranks fit in the cores
  bool through_mpirun = false; // start the ranks with mpirun (needed by MPI implementations)
};

/// Starts `options.ranks` copies of this program with `argv` and supervises them: if one dies,
/// the others are stopped and a message naming the rank and how it died goes to stderr.
/// Returns the exit status the supervisor should exit with (0 when every rank exited 0).
int launch_local(const std::vector<std::string>& argv, const LocalLaunchOptions& options);

/// Joins the job this process is a rank of (any LaunchKind but none). `fingerprint` is a digest of
/// the arguments: every rank checks all ranks got the same one (UsageError otherwise).
std::unique_ptr<Bootstrap> join_job(const std::string& fingerprint, double timeout_s);

/// Facts about this rank's placement, for results: "core 3", "cores 0-1", "none".
struct Placement {
  std::string binding = "none";
  int threads = 1;           // compute threads this rank should use
  bool oversubscribed = false;  // more ranks on this host than cores: waits must yield
};
Placement this_rank_placement();

}  // namespace cclab
