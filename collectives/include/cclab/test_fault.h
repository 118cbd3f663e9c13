// Test-only fault injection, to prove that failures end a job with a clear message and that what
// was written before survives: CCLAB_FAULT_RANK=R, a count variable (CCLAB_FAULT_AFTER_RECORDS for
// `cclab bench`, CCLAB_FAULT_AFTER_STEPS for `cclab train`) = K and CCLAB_FAULT=kill|stall make
// rank R die (SIGKILL) or stop answering once K results / steps are done. CCLAB_FAULT=wrong makes
// rank R's `--check` results wrong instead (fault_makes_results_wrong), to prove the exit status.
#pragma once

#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

namespace cclab {

inline void maybe_inject_fault(int rank, size_t done, const char* count_variable) {
  const char* fault_rank = std::getenv("CCLAB_FAULT_RANK");
  const char* after = std::getenv(count_variable);
  if (!fault_rank || !after || std::atoi(fault_rank) != rank || size_t(std::atol(after)) != done) return;
  const std::string fault = std::getenv("CCLAB_FAULT") ? std::getenv("CCLAB_FAULT") : "kill";
  if (fault == "stall")
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
  raise(SIGKILL);
}

/// True on rank R under CCLAB_FAULT_RANK=R CCLAB_FAULT=wrong: the bench then spoils one element
/// of that rank's output before checking it.
inline bool fault_makes_results_wrong(int rank) {
  const char* fault_rank = std::getenv("CCLAB_FAULT_RANK");
  const char* fault = std::getenv("CCLAB_FAULT");
  return fault_rank && fault && std::string(fault) == "wrong" && std::atoi(fault_rank) == rank;
}

}  // namespace cclab
