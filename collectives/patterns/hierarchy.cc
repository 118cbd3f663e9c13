#include "patterns/hierarchy.h"

#include <algorithm>
#include <map>

namespace cclab {

NodeLayout::NodeLayout(const std::vector<int>& node_of_rank) {
  std::map<int, int> renumbered;
  node_of_rank_.reserve(node_of_rank.size());
  local_index_.reserve(node_of_rank.size());
  for (size_t rank = 0; rank < node_of_rank.size(); ++rank) {
    const auto [entry, inserted] = renumbered.try_emplace(node_of_rank[rank], int(members_.size()));
    if (inserted) members_.emplace_back();
    std::vector<int>& node = members_[size_t(entry->second)];
    node_of_rank_.push_back(entry->second);
    local_index_.push_back(int(node.size()));
    node.push_back(int(rank));
  }
}

std::vector<int> NodeLayout::leaders() const {
  std::vector<int> result;
  for (const std::vector<int>& node : members_) result.push_back(node.front());
  return result;
}

std::vector<int> NodeLayout::node_sizes() const {
  std::vector<int> result;
  for (const std::vector<int>& node : members_) result.push_back(int(node.size()));
  return result;
}

int NodeLayout::smallest_node_size() const {
  const std::vector<int> sizes = node_sizes();
  return sizes.empty() ? 0 : *std::min_element(sizes.begin(), sizes.end());
}

int NodeLayout::largest_node_size() const {
  const std::vector<int> sizes = node_sizes();
  return sizes.empty() ? 0 : *std::max_element(sizes.begin(), sizes.end());
}

int ring_reduce_scatter_owner(int chunk, int size) { return (chunk + size - 1) % size; }

std::vector<RailPiece> rail_pieces(Span slice, const std::vector<int>& node_sizes,
                                   int (*owner_of_chunk)(int chunk, int size)) {
  // Every cut any node makes, as offsets into the slice; consecutive cuts bound one piece.
  std::vector<size_t> cuts = {slice.count};
  for (int size : node_sizes)
    for (size_t chunk = 0; chunk < size_t(size); ++chunk)
      cuts.push_back(balanced_part(slice.count, size_t(size), chunk).offset);
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());

  std::vector<RailPiece> pieces;
  for (size_t i = 0; i + 1 < cuts.size(); ++i) {
    RailPiece piece{{slice.offset + cuts[i], cuts[i + 1] - cuts[i]}, {}};
    for (int size : node_sizes) {
      // The chunk of this node that contains the piece: the last chunk starting at or before it.
      int chunk = 0;
      while (chunk + 1 < size && balanced_part(slice.count, size_t(size), size_t(chunk + 1)).offset <= cuts[i]) ++chunk;
      piece.owner.push_back(owner_of_chunk(chunk, size));
    }
    pieces.push_back(std::move(piece));
  }
  return pieces;
}

size_t max_rail_pieces(const std::vector<int>& node_sizes) {
  size_t cuts = 0;
  for (int size : node_sizes) cuts += size_t(size - 1);
  return cuts + 1;
}

}  // namespace cclab
