// Binomial tree and chain over a group of positions, rooted anywhere: pure rank and offset math.
#pragma once

#include <vector>

#include "patterns/partition.h"

namespace cclab {

/// Binomial tree over `size` positions rooted at `root`. Positions are relabelled relative to the
/// root (relative = (position - root) mod size), so the tree has the same shape for every root.
/// In relative numbers the parent of r > 0 is r with its lowest set bit cleared, and the children
/// of r are r + m for every power of two m below r's lowest set bit (below `size` at the root)
/// with r + m < size. The subtree of r is then the contiguous range [r, r + subtree_size()), and
/// the subtrees of r's children cut [r + 1, r + subtree_size()) into consecutive ranges, which is
/// what lets a binomial scatter hand each child one contiguous run of blocks.
struct BinomialTree {
  int position;
  int size;
  int root;

  int relative() const { return relative_of(position); }
  int relative_of(int any_position) const { return (any_position - root + size) % size; }
  int position_of(int relative_position) const { return (relative_position + root) % size; }

  /// Parent position, or -1 at the root.
  int parent() const;
  /// Child positions, farthest first (r + m for decreasing m): the child heading the deepest
  /// subtree comes first, the order a broadcast feeds them so the longest path starts earliest.
  /// A reduction waits for them in the reverse order, as the shallow subtrees finish first.
  std::vector<int> children() const;
  /// Positions in this subtree, this one included: relative positions [relative(), relative() + it).
  int subtree_size() const;
  /// Whether relative position `relative_position` lies in this position's subtree.
  bool subtree_contains_relative(int relative_position) const;
  /// The elements of this subtree's blocks when `count` elements are cut into `size` balanced
  /// blocks numbered by relative position (block b goes to relative position b).
  Span subtree_span(size_t count) const;
};

/// Chain of `size` positions starting at `root`: data flows root -> root+1 -> ... (mod size).
struct Chain {
  int position;
  int size;
  int root;

  /// Position that feeds this one, or -1 at the root.
  int previous() const { return position == root ? -1 : (position + size - 1) % size; }
  /// Position this one feeds, or -1 at the tail (the position just before the root).
  int next() const { return (position + 1) % size == root ? -1 : (position + 1) % size; }
};

}  // namespace cclab
