#include <algorithm>
#include <set>

#include "cclab/algorithm.h"

namespace cclab {

std::string_view collective_name(Collective collective) {
  switch (collective) {
    case Collective::allreduce: return "allreduce";
    case Collective::broadcast: return "broadcast";
    case Collective::reduce: return "reduce";
    case Collective::reduce_scatter: return "reduce_scatter";
    case Collective::allgather: return "allgather";
  }
  return "?";
}

std::optional<Collective> parse_collective(std::string_view text) {
  for (Collective c : {Collective::allreduce, Collective::broadcast, Collective::reduce, Collective::reduce_scatter,
                       Collective::allgather})
    if (collective_name(c) == text) return c;
  return std::nullopt;
}

int Topology::nodes() const { return int(std::set<int>(node_of_rank.begin(), node_of_rank.end()).size()); }

int Topology::ranks_on_node_of(int rank) const {
  return int(std::count(node_of_rank.begin(), node_of_rank.end(), node_of_rank[size_t(rank)]));
}

Schedule reads_within_nodes(const Schedule& schedule, const Topology& topology, int rank) {
  return through_transport(schedule, [&](int peer) { return topology.same_node(peer, rank); });
}

Topology Topology::single_node(int ranks) { return Topology{std::vector<int>(size_t(ranks), 0)}; }

size_t CollectiveArgs::segment_elements() const {
  return std::max<size_t>(1, segment_bytes / dtype_size(dtype));
}

BufferCounts buffer_counts(Collective collective, size_t count, int ranks) {
  switch (collective) {
    case Collective::reduce_scatter: return {count, count / size_t(ranks)};
    case Collective::allgather: return {count / size_t(ranks), count};
    default: return {count, count};
  }
}

InplaceOffsets inplace_offsets(Collective collective, size_t count, int ranks, int rank) {
  const size_t block = count / size_t(ranks) * size_t(rank);
  switch (collective) {
    case Collective::reduce_scatter: return {0, block};
    case Collective::allgather: return {block, 0};
    default: return {0, 0};
  }
}

const std::vector<Algorithm>& algorithm_registry() {
  static const std::vector<Algorithm> registry = {
      {"ring", Collective::allreduce,
       "reduce-scatter then allgather around a ring; segmented, pipelined; bandwidth-optimal",
       build_allreduce_ring},
      {"tree", Collective::allreduce,
       "NCCL's double binary tree: each half reduced up one tree, broadcast down; segmented, pipelined",
       build_allreduce_tree},
      {"recursive_doubling", Collective::allreduce,
       "log2(N) whole-array exchanges with rank xor 2^k; MPICH fold for non-power-of-two; small arrays",
       build_allreduce_recursive_doubling},
      {"rabenseifner", Collective::allreduce,
       "recursive-halving reduce-scatter, recursive-doubling allgather; MPICH fold; 2(N-1)/N in 2log2(N) steps",
       build_allreduce_rabenseifner},
      {"hier_rab", Collective::allreduce,
       "reduce to node leaders, ring allreduce among leaders, broadcast in node; stages pipelined over slices",
       build_allreduce_hier_rab},
      {"hier_rail", Collective::allreduce,
       "ring reduce-scatter in node, ring allreduce per rail across nodes, ring allgather in node; any node sizes",
       build_allreduce_hier_rail},
      {"binomial", Collective::broadcast, "binomial tree from any root; segmented, pipelined down the tree",
       build_broadcast_binomial},
      {"chain", Collective::broadcast, "pipelined chain root -> root+1 -> ...; the array once per non-leaf rank",
       build_broadcast_chain},
      {"scatter_allgather", Collective::broadcast,
       "van de Geijn: binomial scatter of blocks then ring allgather; for large arrays",
       build_broadcast_scatter_allgather},
      {"binomial", Collective::reduce, "binomial tree to any root; segmented, pipelined; commutative ops",
       build_reduce_binomial},
      {"ring", Collective::reduce_scatter, "N-1 steps around a ring; segmented, pipelined; bandwidth-optimal",
       build_reduce_scatter_ring},
      {"recursive_halving", Collective::reduce_scatter,
       "log2(N) steps, each handing half of what is left to rank xor 2^k; MPICH fold for non-power-of-two",
       build_reduce_scatter_recursive_halving},
      {"ring", Collective::allgather, "N-1 steps around a ring; segmented, pipelined; bandwidth-optimal",
       build_allgather_ring},
      {"recursive_doubling", Collective::allgather,
       "ceil(log2 N) steps doubling the blocks held: rank xor 2^k, Bruck's dissemination for non-power-of-two",
       build_allgather_recursive_doubling},
      {"direct", Collective::allreduce,
       "one node: rank r reduces block r from every rank's input in place, then reads the others' finished blocks",
       build_allreduce_direct, /*reads_peers=*/true},
      {"oneshot", Collective::allreduce,
       "one node: every rank reduces the whole array from every rank's input in place, in rank order; one phase",
       build_allreduce_oneshot, /*reads_peers=*/true},
      {"hier_direct", Collective::allreduce,
       "direct reduce-scatter in node (peer reads), ring allreduce per rail across nodes, direct allgather in node",
       build_allreduce_hier_direct, /*reads_peers=*/true},
      {"direct", Collective::reduce_scatter, "one node: rank r reduces block r from every rank's input in place",
       build_reduce_scatter_direct, /*reads_peers=*/true},
      {"direct", Collective::allgather, "one node: every rank reads every other rank's block in place",
       build_allgather_direct, /*reads_peers=*/true},
      {"direct", Collective::broadcast, "one node: every rank reads the root's array in place",
       build_broadcast_direct, /*reads_peers=*/true},
      {"direct", Collective::reduce,
       "one node: rank r reduces block r from every rank's input in place, the root reads the finished blocks",
       build_reduce_direct, /*reads_peers=*/true},
  };
  return registry;
}

const Algorithm* find_algorithm(Collective collective, std::string_view name) {
  for (const Algorithm& algorithm : algorithm_registry())
    if (algorithm.collective == collective && algorithm.name == name) return &algorithm;
  return nullptr;
}

}  // namespace cclab
