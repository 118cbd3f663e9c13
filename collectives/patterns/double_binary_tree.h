// NCCL's double binary tree: two binary trees over the same ranks, each carrying half of the
// data, so that every rank's links are busy in both directions: pure rank math.
#pragma once

#include <vector>

namespace cclab {

/// A rank's place in one tree: its parent (-1 at the root) and its children (none, one or two).
struct TreeLinks {
  int parent = -1;
  std::vector<int> children;
};

/// NCCL's binary tree over ranks 0..size-1, rooted at 0. With b the lowest set bit of a rank
/// r > 0, its parent is r with bit b cleared and bit 2b set, or with bit b cleared only when that
/// is out of range; its children are r - b/2 and r + c for the largest power of two c <= b/2 with
/// r + c < size. So odd ranks are the leaves, even ranks the interior nodes, and the root 0 has
/// the single child 2^floor(log2(size-1)). Depth is about log2(size).
///
///   size 13:  0 ── 8 ┬─ 4 ┬─ 2 ┬─ 1          size 8:  0 ── 4 ┬─ 2 ┬─ 1
///                    │    │    └─ 3                          │    └─ 3
///                    │    └─ 6 ┬─ 5                          └─ 6 ┬─ 5
///                    │         └─ 7                               └─ 7
///                    └─ 12 ── 10 ┬─ 9
///                                └─ 11
TreeLinks binary_tree(int size, int rank);

/// Tree `tree` (0 or 1) of the double binary tree. Tree 0 is binary_tree(). Tree 1 puts rank r
/// where binary_tree() has rank size-1-r (a mirror image) when size is even, and where it has
/// r-1 (shifted by one) when size is odd. Either way the even places, the interior ones, of tree
/// 0 hold ranks at odd places, the leaves, of tree 1, so a rank forwards data for two children
/// in one tree only (with an odd size rank 0 is the exception: the root of tree 0, with one
/// child, and an interior node of tree 1).
TreeLinks double_binary_tree(int size, int rank, int tree);

}  // namespace cclab
