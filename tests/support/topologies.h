// Topologies for tests of hierarchical algorithms.
#pragma once

#include <vector>

#include "cclab/algorithm.h"

namespace cclab {

/// Nodes of the given sizes; ranks numbered node by node, or dealt to the nodes in turn
/// (0,1,2,0,1,2,...) while a node has room, as a round-robin launcher places them.
inline Topology nodes_of(const std::vector<int>& sizes, bool interleaved) {
  Topology topology;
  if (!interleaved) {
    for (size_t node = 0; node < sizes.size(); ++node)
      topology.node_of_rank.insert(topology.node_of_rank.end(), size_t(sizes[node]), int(node));
    return topology;
  }
  std::vector<int> room = sizes;
  for (bool placed = true; placed;) {
    placed = false;
    for (size_t node = 0; node < room.size(); ++node)
      if (room[node] > 0) {
        --room[node];
        topology.node_of_rank.push_back(int(node));
        placed = true;
      }
  }
  return topology;
}

}  // namespace cclab
