// What carried a job's bytes at each level (docs/design.md, "The wire"): between ranks of one node
// and between nodes, as the transport itself says (for UCX: the transports of each endpoint's
// lanes, e.g. "sysv+cma" or "tcp"). Records, headers and cost-model profiles carry it, so a number
// measured over shared memory is never taken for one measured over a network.
#pragma once

#include <set>
#include <string>
#include <vector>

namespace cclab {

class Comm;

struct Wire {
  std::string intra;  // between ranks of one node; empty: the job has no such pair (or unknown)
  std::string inter;  // between ranks of different nodes; empty: likewise

  bool empty() const { return intra.empty() && inter.empty(); }
  bool operator==(const Wire& other) const { return intra == other.intra && inter == other.inter; }
  bool operator!=(const Wire& other) const { return !(*this == other); }

  /// "sysv+cma/tcp"; one level alone: "sysv+cma" (one node), "-/tcp" (one rank per node).
  std::string short_text() const {
    if (inter.empty()) return intra;
    std::string text = intra.empty() ? "-" : intra;
    text += '/';
    text += inter;
    return text;
  }

  /// The same description at every level the job has (a vendor library that says no more, "mpi").
  Wire same_at_each_level(const std::string& what) const {
    return {intra.empty() ? "" : what, inter.empty() ? "" : what};
  }
};

/// A level's distinct descriptions joined by '|' ("sysv+cma|tcp"), as levels whose ranks differ read.
std::string join_alternatives(const std::set<std::string>& descriptions);

/// Whether a level's description names a shared-memory transport (UCX's posix, sysv, xpmem, knem,
/// cma, mm; Open MPI's vader: "mpi:vader+cma"), which can only join processes under one kernel.
bool names_shared_memory(const std::string& level);

/// Collective over `comm`: the wire of its transport at each level, from every rank's endpoints
/// (Transport::wire_to). Where ranks differ, the distinct descriptions joined by '|'. Prints a
/// one-line warning on rank 0's stderr, once per process, when ranks on different nodes reach
/// each other through shared memory.
Wire job_wire(Comm& comm);

/// A one-line warning (empty when none) when `profile_wire`, the wire a cost-model profile was
/// fitted on, differs from the job's at a level both have. `source`: where the profile came from.
std::string profile_wire_mismatch(const Wire& profile_wire, const Wire& job, const std::string& source);

}  // namespace cclab
