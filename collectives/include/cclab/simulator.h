// Runs every rank's Schedule symbolically, with no transport, and proves the result (DESIGN 3.3).
//
// Each element carries the multiset of (rank, input index) terms it was reduced from, plus how
// often an average's division was applied. A schedule is correct when every output element holds
// exactly the terms the collective defines, each once, and the division was applied once.
// Sends complete only when the peer has posted the matching receive (rendezvous), the strictest
// behaviour a transport may have, so a schedule that finishes here cannot deadlock on one.
// Optionally it also proves the dependencies: two steps of one rank that touch overlapping memory,
// one of them writing, must be ordered by the dependency graph (the executor runs unordered
// steps concurrently).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "cclab/algorithm.h"

namespace cclab {

struct SimulationResult {
  bool correct = false;
  std::string error;  // first problem found: which rank, step and element
  std::vector<size_t> elements_sent;      // per rank
  std::vector<size_t> elements_received;  // per rank
  size_t max_elements_sent() const;
  size_t max_elements_received() const;
};

struct SimulationOptions {
  bool check_dependencies = true;
};

/// Proves `schedules` (one per rank, built for `args` on `topology`).
SimulationResult simulate(const Topology& topology, const CollectiveArgs& args, const std::vector<Schedule>& schedules,
                          const SimulationOptions& options = {});

/// Builds every rank's schedule with `algorithm` and simulates it.
SimulationResult simulate(const Algorithm& algorithm, const Topology& topology, const CollectiveArgs& args,
                          const SimulationOptions& options = {});

/// Bytes each rank sends, from the schedules alone (no symbolic run): the predicted volume.
struct PredictedTraffic {
  size_t max_bytes_sent = 0;
  size_t max_bytes_received = 0;
};
PredictedTraffic predict_traffic(const Algorithm& algorithm, const Topology& topology, const CollectiveArgs& args);

}  // namespace cclab
