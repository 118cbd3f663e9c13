#include "patterns/binomial.h"

#include <algorithm>

namespace cclab {
namespace {

int lowest_set_bit(int value) { return value & -value; }

}  // namespace

int BinomialTree::parent() const {
  const int r = relative();
  return r == 0 ? -1 : position_of(r - lowest_set_bit(r));
}

std::vector<int> BinomialTree::children() const {
  const int r = relative();
  // The root may use every power of two below `size`; others only those below their lowest bit.
  int mask = 1;
  while (mask < (r == 0 ? size : lowest_set_bit(r))) mask <<= 1;
  std::vector<int> result;
  for (mask >>= 1; mask > 0; mask >>= 1)
    if (r + mask < size) result.push_back(position_of(r + mask));
  return result;
}

int BinomialTree::subtree_size() const {
  const int r = relative();
  return r == 0 ? size : std::min(lowest_set_bit(r), size - r);
}

bool BinomialTree::subtree_contains_relative(int relative_position) const {
  const int offset = relative_position - relative();
  return offset >= 0 && offset < subtree_size();
}

Span BinomialTree::subtree_span(size_t count) const {
  const size_t first = size_t(relative()), last = first + size_t(subtree_size()) - 1;
  const size_t begin = balanced_part(count, size_t(size), first).offset;
  const Span last_block = balanced_part(count, size_t(size), last);
  return {begin, last_block.offset + last_block.count - begin};
}

}  // namespace cclab
