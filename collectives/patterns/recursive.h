// Recursive halving and doubling: MPICH's fold of any rank count onto a power of two, the
// partners and block groups of each step, and a distance-doubling allgather for any rank count:
// pure rank and block math.
#pragma once

#include <vector>

namespace cclab {

/// MPICH's fold of `ranks` ranks onto a core of the largest power of two <= ranks. The first
/// 2·extra ranks (extra = ranks - core) pair up: even rank 2i hands its data to odd rank 2i+1 and
/// sits out; the odd ranks 2i+1 and every rank from 2·extra on form the core, members 0..core-1
/// in rank order (member i is rank 2i+1 for i < extra, rank i+extra after that). At the end
/// each odd rank of a pair hands the result back to the even one. Member i stands for the ranks
/// [first_rank(i), end_rank(i)): itself and the rank it absorbed, so consecutive members stand
/// for consecutive ranks.
struct PowerOfTwoFold {
  int ranks;

  int core_size() const;
  int extra_ranks() const { return ranks - core_size(); }
  /// An even rank of a pair: hands its data to rank + 1 and sits out.
  bool sits_out(int rank) const { return rank < 2 * extra_ranks() && rank % 2 == 0; }
  /// An odd rank of a pair: absorbs rank - 1's data and hands it the result at the end.
  bool absorbs(int rank) const { return rank < 2 * extra_ranks() && rank % 2 == 1; }
  /// Core member of `rank`; -1 for a rank that sits out.
  int member_of(int rank) const;
  int rank_of(int member) const;
  /// The ranks member `member` stands for are [first_rank(member), end_rank(member)).
  int first_rank(int member) const;
  int end_rank(int member) const { return rank_of(member) + 1; }
};

/// Members [first, first + count).
struct MemberRange {
  int first;
  int count;
};

/// In recursive halving and doubling among a power-of-two number of members, member m works with
/// m ^ d at distance d, and the data either holds is that of the aligned group of d members
/// [m - m % d, m - m % d + d). Recursive halving visits distances size/2, ..., 2, 1: m keeps
/// aligned_group(m, d) and hands its partner aligned_group(m ^ d, d), ending with the block of
/// member m alone. Recursive doubling visits 1, 2, ..., size/2 and mirrors it: m sends
/// aligned_group(m, d) and receives aligned_group(m ^ d, d), ending with every block.
MemberRange aligned_group(int member, int distance);
std::vector<int> halving_distances(int size);
std::vector<int> doubling_distances(int size);

/// Blocks first, first+1, ..., first+count-1, modulo the number of blocks (it may wrap around).
struct BlockRun {
  int first;
  int count;
};

/// One step of an allgather: send blocks to one rank, receive blocks from another.
struct AllgatherExchange {
  int send_to;
  BlockRun sent;
  int receive_from;
  BlockRun received;
};

/// Distance-doubling allgather over `size` ranks where rank r starts with block r: ceil(log2
/// size) steps at distances d = 1, 2, 4, ..., each doubling the blocks a rank holds (the last may
/// add fewer), size - 1 blocks sent and received in all. For a power-of-two size this is
/// recursive doubling: partner r ^ d, aligned_group() blocks. For any other size it is Bruck's
/// dissemination: at distance d rank r holds the run of d blocks starting at its own, sends the
/// first min(d, size - d) of them to r - d and receives as many from r + d, which extend its
/// run; runs wrap around the end of the array, so no final rotation is needed.
std::vector<AllgatherExchange> distance_doubling_allgather(int size, int rank);

/// The runs of contiguous blocks (one, or two when it wraps around) that make up `run` of `size`.
std::vector<BlockRun> contiguous_runs(BlockRun run, int size);

}  // namespace cclab
