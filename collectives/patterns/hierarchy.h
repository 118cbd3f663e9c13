// Ranks grouped by node, and how a hierarchical algorithm splits the array between a node's
// ranks and the links between nodes: pure rank and offset math.
#pragma once

#include <vector>

#include "patterns/partition.h"

namespace cclab {

/// The ranks of each node in rank order; the first is the node's leader. Node ids are taken in
/// order of first appearance in `node_of_rank`, so any labels work, and a node's ranks need not
/// be contiguous.
class NodeLayout {
 public:
  explicit NodeLayout(const std::vector<int>& node_of_rank);

  int nodes() const { return int(members_.size()); }
  int node_of(int rank) const { return node_of_rank_[size_t(rank)]; }
  /// Position of `rank` among its node's ranks (0 = leader).
  int local_index(int rank) const { return local_index_[size_t(rank)]; }
  const std::vector<int>& members(int node) const { return members_[size_t(node)]; }
  std::vector<int> leaders() const;
  std::vector<int> node_sizes() const;
  int smallest_node_size() const;
  int largest_node_size() const;

 private:
  std::vector<int> node_of_rank_;  // renumbered by first appearance
  std::vector<int> local_index_;
  std::vector<std::vector<int>> members_;
};

/// The local index that holds chunk `chunk` of `size` chunks after a ring reduce-scatter: position
/// p ends with chunk p + 1 (see Ring), so chunk c ends on position c - 1.
int ring_reduce_scatter_owner(int chunk, int size);

/// One piece of a slice in the inter-node ("rail") stage of a rail allreduce. Every node cuts the
/// slice into balanced chunks, one per local rank, and a ring reduce-scatter leaves chunk c on one
/// local rank. Nodes of different sizes cut at different places, so the rail stage works on the
/// common refinement of all nodes' cuts: each piece lies inside exactly one chunk of every node,
/// and `owner[n]` is the local index on node n holding it. The owners of a piece, one per node,
/// allreduce it. With equal nodes the pieces are the chunks and owner[n] is the same on every
/// node: the classic rails.
struct RailPiece {
  Span span;
  std::vector<int> owner;  // per node
};

/// The non-empty pieces of `slice`, in array order, for nodes of `node_sizes` ranks, where the
/// node stage leaves chunk c of a node of `size` ranks on local index owner_of_chunk(c, size) (the
/// ring's c - 1 by default; the direct reduce-scatter's c).
std::vector<RailPiece> rail_pieces(Span slice, const std::vector<int>& node_sizes,
                                   int (*owner_of_chunk)(int chunk, int size) = ring_reduce_scatter_owner);

/// An upper bound on rail_pieces(...).size() for any slice: every node adds at most
/// node_size - 1 cuts inside the slice.
size_t max_rail_pieces(const std::vector<int>& node_sizes);

}  // namespace cclab
