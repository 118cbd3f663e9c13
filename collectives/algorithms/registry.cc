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
  };
  return registry;
}

const Algorithm* find_algorithm(Collective collective, std::string_view name) {
  for (const Algorithm& algorithm : algorithm_registry())
    if (algorithm.collective == collective && algorithm.name == name) return &algorithm;
  return nullptr;
}

}  // namespace cclab
