#include "patterns/double_binary_tree.h"

namespace cclab {
namespace {

int lowest_set_bit(int value) { return value & -value; }

// Largest power of two <= value (value >= 1).
int floor_power_of_two(int value) {
  int power = 1;
  while (power <= value / 2) power *= 2;
  return power;
}

// The same links with every place of binary_tree() renamed to the rank that sits there.
template <typename Rename>
TreeLinks renamed(const TreeLinks& links, Rename to_rank) {
  TreeLinks result;
  result.parent = links.parent < 0 ? -1 : to_rank(links.parent);
  for (int child : links.children) result.children.push_back(to_rank(child));
  return result;
}

}  // namespace

TreeLinks binary_tree(int size, int rank) {
  TreeLinks links;
  if (rank == 0) {
    if (size > 1) links.children.push_back(floor_power_of_two(size - 1));
    return links;
  }
  const int bit = lowest_set_bit(rank);
  links.parent = (rank ^ bit) | (bit << 1);
  if (links.parent >= size) links.parent = rank ^ bit;
  if (bit == 1) return links;  // odd ranks are leaves
  links.children.push_back(rank - bit / 2);
  for (int step = bit / 2; step > 0; step /= 2)
    if (rank + step < size) {
      links.children.push_back(rank + step);
      break;
    }
  return links;
}

TreeLinks double_binary_tree(int size, int rank, int tree) {
  if (tree == 0) return binary_tree(size, rank);
  if (size % 2 == 0) {
    // Mirror image: rank r sits where rank size-1-r sits in tree 0.
    const auto mirror = [size](int place) { return size - 1 - place; };
    return renamed(binary_tree(size, mirror(rank)), mirror);
  }
  // Shifted by one: rank r sits where rank r-1 sits in tree 0.
  return renamed(binary_tree(size, (rank + size - 1) % size), [size](int place) { return (place + 1) % size; });
}

}  // namespace cclab
