// A job whose ranks are threads of this process, each with its own Comm over a ThreadBootstrap:
// how the bench runs ranks that share one GPU (device-loopback), and how unit tests run code that
// takes a Comm.
#pragma once

#include <exception>
#include <functional>

#include "cclab/comm.h"

namespace cclab {

struct ThreadRanksOutcome {
  bool passed = true;          // every rank's body returned true
  int failed_rank = -1;        // the first rank that threw; -1 when none did
  std::exception_ptr failure;  // what it threw (the others only stopped because of it)
};

/// Runs `body` on `ranks` threads, each with a Comm made with `options` (its timeout bounds every
/// wait of the job), and returns when all have ended. A rank that throws ends the others' waits on
/// the job at once; each Comm is torn down before its thread ends.
ThreadRanksOutcome run_ranks_as_threads(int ranks, const CommOptions& options, const std::function<bool(Comm&)>& body);

}  // namespace cclab
