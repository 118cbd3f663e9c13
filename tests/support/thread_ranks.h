// Ranks as threads, each with its own Comm over a ThreadBootstrap and the UCX transport, for tests
// of code that takes a Comm.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bootstrap/thread_ranks.h"
#include "cclab/comm.h"

namespace cclab {

/// Runs `body(rank)` on `ranks` threads; returns the first failure, "" when every rank finished.
inline std::string run_threads(int ranks, const std::function<void(int)>& body) {
  std::vector<std::string> errors(static_cast<size_t>(ranks));
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r)
    threads.emplace_back([&, r] {
      try {
        body(r);
      } catch (const std::exception& error) {
        errors[size_t(r)] = "rank " + std::to_string(r) + ": " + error.what();
      }
    });
  for (auto& thread : threads) thread.join();
  for (const std::string& error : errors)
    if (!error.empty()) return error;
  return "";
}

/// Runs `body` on `ranks` threads, each with its own Comm (virtual nodes of `ranks_per_node`, 0:
/// one node); returns the first failure, "" when every rank finished.
inline std::string run_ranks(int ranks, int ranks_per_node, const std::function<void(Comm&)>& body) {
  CommOptions options;
  options.timeout_s = 10;
  options.ranks_per_node = ranks_per_node;
  options.yield_when_idle = true;
  const ThreadRanksOutcome outcome = run_ranks_as_threads(ranks, options, [&](Comm& comm) {
    body(comm);
    comm.barrier();
    return true;
  });
  if (!outcome.failure) return "";
  try {
    std::rethrow_exception(outcome.failure);
  } catch (const std::exception& error) {
    return "rank " + std::to_string(outcome.failed_rank) + ": " + error.what();
  }
}

}  // namespace cclab
