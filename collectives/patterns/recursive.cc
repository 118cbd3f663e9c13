#include "patterns/recursive.h"

#include <algorithm>

namespace cclab {
namespace {

bool is_power_of_two(int value) { return value > 0 && (value & (value - 1)) == 0; }

}  // namespace

int PowerOfTwoFold::core_size() const {
  int core = 1;
  while (core <= ranks / 2) core *= 2;
  return core;
}

int PowerOfTwoFold::member_of(int rank) const {
  const int extra = extra_ranks();
  if (rank >= 2 * extra) return rank - extra;
  return rank % 2 == 1 ? rank / 2 : -1;
}

int PowerOfTwoFold::rank_of(int member) const {
  const int extra = extra_ranks();
  return member < extra ? 2 * member + 1 : member + extra;
}

int PowerOfTwoFold::first_rank(int member) const {
  const int extra = extra_ranks();
  return member < extra ? 2 * member : member + extra;
}

MemberRange aligned_group(int member, int distance) { return {member - member % distance, distance}; }

std::vector<int> doubling_distances(int size) {
  std::vector<int> distances;
  for (int distance = 1; distance < size; distance *= 2) distances.push_back(distance);
  return distances;
}

std::vector<int> halving_distances(int size) {
  std::vector<int> distances = doubling_distances(size);
  std::reverse(distances.begin(), distances.end());
  return distances;
}

std::vector<AllgatherExchange> distance_doubling_allgather(int size, int rank) {
  std::vector<AllgatherExchange> steps;
  for (int distance : doubling_distances(size)) {
    if (is_power_of_two(size)) {
      const int partner = rank ^ distance;
      const MemberRange mine = aligned_group(rank, distance), theirs = aligned_group(partner, distance);
      steps.push_back({partner, {mine.first, mine.count}, partner, {theirs.first, theirs.count}});
    } else {
      // doubling_distances() stops below `size`, so d < size and every step moves something.
      const int blocks = std::min(distance, size - distance), sender = (rank + distance) % size;
      steps.push_back({(rank - distance + size) % size, {rank, blocks}, sender, {sender, blocks}});
    }
  }
  return steps;
}

std::vector<BlockRun> contiguous_runs(BlockRun run, int size) {
  const int first = run.first % size;
  if (first + run.count <= size) return {{first, run.count}};
  return {{first, size - first}, {0, first + run.count - size}};
}

}  // namespace cclab
