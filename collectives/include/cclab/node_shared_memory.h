// Memory that the ranks of one node map, each rank owning one segment (the idea of MPI-3's
// MPI_Win_allocate_shared). Within a node a transport's large message is a copy by the receiving
// process (UCX: process_vm_readv, CMA), paid on top of the computation that produced the data and
// the one that consumes it; with the data in shared memory the consumer reads it where it lies.
// The data-parallel trainer keeps every rank's parameters and gradients here (DESIGN 3.6).
//
// What moves through it is not seen by a Transport: its users count it themselves in the
// transport's meter (TrafficMeter::count_direct_traffic), so measured volume stays comparable
// with DESIGN 3.7.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace cclab {

class Comm;

class NodeSharedMemory {
 public:
  /// Collective over every rank of `comm`. Maps one segment of at least `bytes_per_rank` (rounded
  /// up to whole pages) per rank, zero-filled. Returns null on every rank, with the reason in
  /// `why_not`, when the ranks are not all on one node (Comm topology) or when any rank cannot map
  /// it; the caller then moves the data through the transport.
  static std::unique_ptr<NodeSharedMemory> create(Comm& comm, size_t bytes_per_rank, std::string* why_not);
  /// The same on a job of any number of nodes: each node maps memory of its own, and a rank
  /// addresses the segments of its own node's ranks only (maps()). Null on every rank when any
  /// rank of any node cannot map it.
  static std::unique_ptr<NodeSharedMemory> create_on_each_node(Comm& comm, size_t bytes_per_rank,
                                                               std::string* why_not);
  ~NodeSharedMemory();
  NodeSharedMemory(const NodeSharedMemory&) = delete;
  NodeSharedMemory& operator=(const NodeSharedMemory&) = delete;

  /// The ranks whose segments this rank maps: its node's.
  int ranks() const { return ranks_; }
  bool maps(int rank) const {
    return rank >= 0 && size_t(rank) < slot_of_rank_.size() && slot_of_rank_[size_t(rank)] >= 0;
  }
  /// Position of `rank` (a rank of this rank's node) among its node's ranks, in rank order.
  int index_on_node(int rank) const { return slot_of_rank_[size_t(rank)]; }
  /// Rank `rank`'s segment (a rank of this rank's node): segment_bytes() bytes, page-aligned.
  std::byte* segment(int rank) const { return base_ + size_t(index_on_node(rank)) * segment_bytes_; }
  size_t segment_bytes() const { return segment_bytes_; }

 private:
  NodeSharedMemory(std::byte* base, size_t segment_bytes, std::vector<int> slot_of_rank)
      : base_(base),
        segment_bytes_(segment_bytes),
        slot_of_rank_(std::move(slot_of_rank)),
        ranks_(int(std::count_if(slot_of_rank_.begin(), slot_of_rank_.end(), [](int slot) { return slot >= 0; }))) {}
  std::byte* base_;
  size_t segment_bytes_;
  std::vector<int> slot_of_rank_;  // a rank's segment number on this node, -1 for other nodes' ranks
  int ranks_;
};

/// A counter in shared memory that one rank raises and others wait for: "my data of step s is
/// ready" (release on raise, acquire on the read, so what was written before the raise is seen).
class SharedCounter {
 public:
  /// `word` lives in a NodeSharedMemory segment, 8-byte aligned; it starts at 0.
  explicit SharedCounter(uint64_t* word) : word_(word) {}
  void raise_to(uint64_t value) { std::atomic_ref<uint64_t>(*word_).store(value, std::memory_order_release); }
  bool reached(uint64_t value) const {
    return std::atomic_ref<uint64_t>(*word_).load(std::memory_order_acquire) >= value;
  }

 private:
  uint64_t* word_;
};

}  // namespace cclab
