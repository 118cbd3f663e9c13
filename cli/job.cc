#include "job.h"

#include <sched.h>

#include <algorithm>
#include <iostream>
#include <string>
#include <utility>

#include "bootstrap/thread_ranks.h"
#include "cclab/error.h"
#include "cclab/launch.h"
#include "flag_checks.h"
#include "results.h"

namespace cclab {

// Bounds of the job flags: a world of up to 2^20 ranks, waits of up to a week.
constexpr double kMostRanks = 1 << 20;
constexpr double kLongestTimeoutS = 7 * 24 * 3600;

int default_max_local_ranks() {
  cpu_set_t cpus;
  const int usable = sched_getaffinity(0, sizeof(cpus), &cpus) == 0 ? CPU_COUNT(&cpus) : 1;
  return std::max(64, 4 * usable);
}

void add_job_flags(CLI::App& command, JobFlags& flags) {
  command
      .add_option("-n,--ranks", flags.ranks, "Local ranks to start (as mpirun -n); under a launcher: its world size")
      ->check(in_range(1, kMostRanks));
  command.add_option("--timeout", flags.timeout_s, "Seconds any wait may take before the job fails")
      ->capture_default_str()
      ->check(in_range(0.001, kLongestTimeoutS, false));
  command.add_option("--bind", flags.bind, "core: pin local ranks to cores when they fit; none")->capture_default_str();
  command.add_option("--ranks-per-node", flags.ranks_per_node, "Group ranks into virtual nodes of this size")
      ->check(in_range(1, kMostRanks));
  command
      .add_option("--max-local-ranks", flags.max_local_ranks,
                  "Most ranks -n may start on this host (default: 64, or 4 per usable CPU where that is more)")
      ->check(in_range(1, kMostRanks));
  command.add_option("--transport", flags.transport,
                     "Transport of hand-written code: ucx or mpi (host memory); nccl, or device-loopback (ranks "
                     "as threads sharing one GPU), for bench collectives with --mem cuda")
      ->capture_default_str();
  command.add_option("--inter-transport", flags.inter_transport,
                     "Transport between nodes: ucx, mpi, or ucx:tcp, ucx:rc, ucx:auto... (a UCX context of its own "
                     "for the traffic between nodes); default: the same as --transport");
}

void check_local_ranks(int ranks, const JobFlags& flags, const std::string& flag) {
  const int most = flags.max_local_ranks > 0 ? flags.max_local_ranks : default_max_local_ranks();
  if (ranks > most)
    throw UsageError(flag + " " + std::to_string(ranks) + " would start " + std::to_string(ranks) +
                     " processes on this host; at most " + std::to_string(most) +
                     " unless --max-local-ranks says more (-n is ranks, as mpirun -n; iterations are --iters)");
}

void validate_job_flags(const JobFlags& flags) {
  // -n and --timeout ranges are checked where they are parsed (add_job_flags).
  if (detect_launch() == LaunchKind::none) check_local_ranks(flags.ranks, flags, "-n");
  if (flags.bind != "core" && flags.bind != "none") throw UsageError("--bind takes core or none");
  const auto transports = available_transports();
  if (std::find(transports.begin(), transports.end(), flags.transport) == transports.end())
    throw UsageError("unknown transport '" + flags.transport +
                     "' here (ucx, mpi; nccl and device-loopback for bench collectives with --mem cuda)");
  check_inter_transport(flags.inter_transport);
}

namespace {

// What a rank's failure prints and the exit status it gives: a usage error is the same on every
// rank and says "error"; anything else names the rank.
std::pair<std::string, int> describe_failure(int rank, const std::exception& error) {
  const bool usage = dynamic_cast<const UsageError*>(&error) != nullptr;
  return {std::string("cclab: ") + (usage ? std::string("error") : "rank " + std::to_string(rank)) + ": " +
              error.what() + "\n",
          usage ? 2 : 1};
}

CommOptions comm_options(const JobFlags& flags, bool yield_when_idle) {
  CommOptions options;
  options.transport = flags.transport;
  options.inter_transport = flags.inter_transport;
  options.timeout_s = flags.timeout_s;
  options.ranks_per_node = flags.ranks_per_node;
  options.yield_when_idle = yield_when_idle;
  return options;
}

}  // namespace

int run_job(const JobFlags& flags, const std::vector<std::string>& argv, bool needs_mpirun,
            const std::function<bool(Comm&)>& body) {
  needs_mpirun |= flags.transport == "mpi" || flags.inter_transport == "mpi";
  const LaunchKind kind = detect_launch();
  if (kind == LaunchKind::none) {
    LocalLaunchOptions launch;
    launch.ranks = flags.ranks > 0 ? flags.ranks : 1;
    launch.timeout_s = flags.timeout_s;
    launch.bind = flags.bind == "core";
    launch.through_mpirun = needs_mpirun;
    return launch_local(argv, launch);
  }
  if (flags.ranks != -1 && flags.ranks != launcher_world_size())
    throw UsageError("-n " + std::to_string(flags.ranks) + " differs from the launcher's world size " +
                     std::to_string(launcher_world_size()) + " (drop -n under mpirun/srun)");
  if (needs_mpirun && kind != LaunchKind::mpi)
    throw UsageError("MPI (an implementation or transport) needs ranks started by mpirun (cclab -n N uses mpirun)");

  std::string fingerprint;
  for (size_t i = 1; i < argv.size(); ++i) fingerprint += argv[i] + '\0';
  std::unique_ptr<Bootstrap> bootstrap = join_job(fingerprint, flags.timeout_s);
  const int rank = bootstrap->rank();
  // Says what failed and returns the exit status. One write per line, so that the lines of ranks
  // sharing a terminal or a pipe do not interleave.
  auto report_failure = [rank](const std::exception& error) {
    const auto [line, status] = describe_failure(rank, error);
    // Usage errors are found alike on every rank: one of them says it.
    if (status != 2 || rank == 0) std::cerr << line << std::flush;
    return status;
  };
  int reported_status = 0;
  try {
    std::unique_ptr<Comm> comm =
        Comm::create(std::move(bootstrap), comm_options(flags, this_rank_placement().oversubscribed));
    try {
      describe_job(*comm);  // the ranks' hosts, for the records
      const bool passed = body(*comm);
      comm->transport().shutdown();  // collective: nobody tears down while a peer still needs it
      if (passed) return 0;
      return kind == LaunchKind::local ? kRankChecksFailedExitStatus : kChecksFailedExitStatus;
    } catch (const std::exception& error) {
      // Said while the communicator stands: its teardown may wait, bounded, for peers that are gone
      // (a dead link). Rethrown so that it is torn down as a failed job's, which waits for no goodbye.
      reported_status = report_failure(error);
      throw;
    }
  } catch (const std::exception& error) {
    return reported_status != 0 ? reported_status : report_failure(error);
  }
}

int run_job_in_threads(const JobFlags& flags, const std::function<bool(Comm&)>& body) {
  if (detect_launch() != LaunchKind::none)
    throw UsageError("--transport device-loopback runs the ranks as threads of one process: start it by hand with "
                     "-n N, not under a launcher");
  // More threads than cores wait on a device, not on a core: waiting loops yield.
  const ThreadRanksOutcome outcome =
      run_ranks_as_threads(flags.ranks > 0 ? flags.ranks : 1, comm_options(flags, /*yield_when_idle=*/true),
                           [&body](Comm& comm) {
                             describe_job(comm);  // the ranks' hosts, for the records
                             return body(comm);
                           });
  if (outcome.failure) {
    try {
      std::rethrow_exception(outcome.failure);
    } catch (const std::exception& error) {
      const auto [line, status] = describe_failure(outcome.failed_rank, error);
      std::cerr << line << std::flush;
      return status;
    }
  }
  return outcome.passed ? 0 : kChecksFailedExitStatus;
}

}  // namespace cclab
