// Hand-written algorithms as data: each has a name, a one-line description and a function that
// builds one rank's Schedule (DESIGN 3.3). `--impl NAME` looks them up here.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cclab/dtype.h"
#include "cclab/schedule.h"

namespace cclab {

enum class Collective : uint8_t { allreduce, broadcast, reduce, reduce_scatter, allgather };
std::string_view collective_name(Collective collective);
std::optional<Collective> parse_collective(std::string_view text);

/// Which node each rank lives on (ranks grouped by host name, or --ranks-per-node).
struct Topology {
  std::vector<int> node_of_rank;
  int ranks() const { return int(node_of_rank.size()); }
  int nodes() const;
  bool same_node(int a, int b) const { return node_of_rank[size_t(a)] == node_of_rank[size_t(b)]; }
  /// Ranks on `rank`'s node, itself included.
  int ranks_on_node_of(int rank) const;
  /// One node holding `ranks` ranks.
  static Topology single_node(int ranks);
};

/// What one call asks for. `count` is the elements of the whole array (nccl-tests' convention):
/// - allreduce:      input count, output count on every rank;
/// - broadcast:      input count on the root (ignored elsewhere), output count on every rank;
/// - reduce:         input count on every rank, output count on the root (unspecified elsewhere);
/// - reduce_scatter: input count, output count/ranks: rank r gets block r (count % ranks == 0);
/// - allgather:      input count/ranks, output count: block r comes from rank r (count % ranks == 0).
/// In place (`inplace`), input and output share memory as in NCCL: the same buffer, except that
/// reduce_scatter's output is block r of the input and allgather's input is block r of the output
/// (see inplace_offsets). An average divides by the rank count exactly once per output element:
/// the reduction that completes an element has `finalize` set.
struct CollectiveArgs {
  Collective collective = Collective::allreduce;
  size_t count = 0;
  DataType dtype = DataType::f32;
  ReduceOp op = ReduceOp::sum;
  int root = 0;
  bool inplace = false;
  size_t segment_bytes = size_t{1} << 20;  // pipelining unit of segmented algorithms
  size_t segments_in_flight = 4;            // receive slots of scratch, per algorithm's own use

  size_t segment_elements() const;
};

/// Elements in each buffer of a collective on `ranks` ranks.
struct BufferCounts {
  size_t input = 0;
  size_t output = 0;
};
BufferCounts buffer_counts(Collective collective, size_t count, int ranks);

/// In place, input and output are one buffer; these are their element offsets within it.
struct InplaceOffsets {
  size_t input = 0;
  size_t output = 0;
};
InplaceOffsets inplace_offsets(Collective collective, size_t count, int ranks, int rank);

using ScheduleBuilder = std::function<Schedule(const Topology&, int rank, const CollectiveArgs&)>;

struct Algorithm {
  std::string name;
  Collective collective;
  std::string description;
  ScheduleBuilder build;
  /// Its schedules read peers' memory within a node (expose, read steps): they run as
  /// reads_within_nodes() has them where the Comm has PeerMemory, and through_transport() elsewhere.
  bool reads_peers = false;
};

/// Rank `rank`'s schedule as it runs where each node's ranks can read each other's memory: its
/// peer reads between ranks of different nodes carried by the transport, the others left reads.
Schedule reads_within_nodes(const Schedule& schedule, const Topology& topology, int rank);

/// Every hand-written algorithm this build has.
const std::vector<Algorithm>& algorithm_registry();
const Algorithm* find_algorithm(Collective collective, std::string_view name);

// Builders, one per file under collectives/algorithms/.
Schedule build_allreduce_ring(const Topology& topology, int rank, const CollectiveArgs& args);
Schedule build_allreduce_tree(const Topology& topology, int rank, const CollectiveArgs& args);
Schedule build_allreduce_recursive_doubling(const Topology& topology, int rank, const CollectiveArgs& args);
Schedule build_allreduce_rabenseifner(const Topology& topology, int rank, const CollectiveArgs& args);
Schedule build_reduce_scatter_ring(const Topology& topology, int rank, const CollectiveArgs& args);
Schedule build_reduce_scatter_recursive_halving(const Topology& topology, int rank, const CollectiveArgs& args);
Schedule build_allgather_ring(const Topology& topology, int rank, const CollectiveArgs& args);
Schedule build_allgather_recursive_doubling(const Topology& topology, int rank, const CollectiveArgs& args);
Schedule build_allreduce_hier_rab(const Topology& topology, int rank, const CollectiveArgs& args);
Schedule build_allreduce_hier_rail(const Topology& topology, int rank, const CollectiveArgs& args);
Schedule build_allreduce_hier_direct(const Topology& topology, int rank, const CollectiveArgs& args);
Schedule build_broadcast_binomial(const Topology& topology, int rank, const CollectiveArgs& args);
Schedule build_broadcast_chain(const Topology& topology, int rank, const CollectiveArgs& args);
Schedule build_broadcast_scatter_allgather(const Topology& topology, int rank, const CollectiveArgs& args);
Schedule build_reduce_binomial(const Topology& topology, int rank, const CollectiveArgs& args);
Schedule build_allreduce_direct(const Topology& topology, int rank, const CollectiveArgs& args);
Schedule build_allreduce_oneshot(const Topology& topology, int rank, const CollectiveArgs& args);
Schedule build_reduce_scatter_direct(const Topology& topology, int rank, const CollectiveArgs& args);
Schedule build_allgather_direct(const Topology& topology, int rank, const CollectiveArgs& args);
Schedule build_broadcast_direct(const Topology& topology, int rank, const CollectiveArgs& args);
Schedule build_reduce_direct(const Topology& topology, int rank, const CollectiveArgs& args);

}  // namespace cclab
