// What the ranks of one node can address in each other's memory (DESIGN 3.2): arrays registered
// with the communicator (MPI_Win_allocate_shared's idea), the flags that order a rank's exposing
// of a region with a peer's reading of it, and a staging area through which a region in memory
// the peers cannot address (a private array) is copied once.
//
// A Schedule's expose step becomes an expose() request here and the peer's read or read_reduce a
// read() request; they pair by (owner, reader, tag, call sequence) in flag slots of node-shared
// memory. The bytes a peer reads count as sent by the owner and received by the reader
// (TrafficMeter::count_direct_traffic), so measured volume keeps its meaning.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cclab/node_shared_memory.h"
#include "cclab/transport.h"

namespace cclab {

class Comm;

class PeerMemory {
 public:
  /// Calls of one process group in flight whose peer reads have flag slots apart (by sequence
  /// modulo this); more calls at once share slots and take turns. Groups have slots apart.
  static constexpr uint64_t kCallsInFlight = 8;
  /// Exposed regions up to this size are copied and their expose completes without waiting for
  /// the reader (an eager send's protocol; cclab's mailboxes carry up to 512 bytes).
  static constexpr size_t kEagerBytes = 4096;

  /// Collective over every rank of `comm`; each node's ranks share memory of their own, and a rank
  /// addresses its node's ranks only (addresses()). Null on every rank, with the reason in
  /// `why_not`, when the shared memory cannot be mapped.
  static std::unique_ptr<PeerMemory> create(Comm& comm, std::string* why_not);
  ~PeerMemory();
  PeerMemory(const PeerMemory&) = delete;
  PeerMemory& operator=(const PeerMemory&) = delete;

  /// A registered array of at least `bytes`, zero-filled; collective: every rank allocates the
  /// same sizes in the same order. Peers read it in place. Null with `why_not` when it cannot be
  /// mapped (on every rank).
  std::shared_ptr<std::byte> allocate(Comm& comm, size_t bytes, std::string* why_not);
  /// Makes room for `bytes` of unregistered regions exposed at once by this rank; collective.
  void reserve_staging(Comm& comm, size_t bytes);
  /// True when [address, address + bytes) lies in an array of allocate().
  bool registered(const void* address, size_t bytes) const { return locate(address, bytes).has_value(); }

  /// Lets `reader` read `bytes` at `region` under `tag` (below kPeerReadTags) in call `sequence`,
  /// as soon as the flag slot is free. Registered memory is read in place; other memory is first
  /// copied into the staging area. The request completes once the reader has read; the region
  /// must not change until then.
  RequestPtr expose(int reader, uint32_t tag, uint64_t sequence, const void* region, size_t bytes,
                    TrafficMeter& traffic);
  /// Waits (when polled) for `owner` to expose `bytes` under `tag` in call `sequence`, then hands
  /// their address to `consume` (which copies or reduces them) and tells the owner it is done.
  RequestPtr read(int owner, uint32_t tag, uint64_t sequence, size_t bytes,
                  std::function<void(const std::byte*)> consume, TrafficMeter& traffic);

  int rank() const { return rank_; }
  /// True when `peer` is another rank of this rank's node: one whose memory this rank can read.
  bool addresses(int peer) const { return peer != rank_ && flags_->maps(peer); }

 private:
  struct Slot;
  class ExposeRequest;
  class ReadRequest;
  PeerMemory(int rank, std::unique_ptr<NodeSharedMemory> flags);
  // The block and offset of [address, address + bytes) when it lies in a registered array.
  std::optional<std::pair<uint64_t, size_t>> locate(const void* address, size_t bytes) const;
  Slot& slot(int owner, int reader, uint32_t tag, uint64_t sequence) const;
  uint64_t& done_word(int owner, int reader, uint32_t tag, uint64_t sequence) const;
  // Staging space of `bytes` in this rank's staging segment: its offset; nullopt while copies
  // that peers have still to read fill it; throws when it is too small even empty.
  std::optional<size_t> take_staging(size_t bytes);
  void give_back_staging(size_t offset);
  void reclaim_lingering();

  int rank_;
  std::unique_ptr<NodeSharedMemory> flags_;
  // Every rank's mappings of the registered arrays and staging areas, by block number: the same
  // on every rank, as blocks are made collectively and in order. An array's block goes when its
  // last user lets go of it.
  std::vector<std::weak_ptr<NodeSharedMemory>> blocks_;
  std::shared_ptr<NodeSharedMemory> staging_;
  uint64_t staging_block_ = 0;
  std::vector<std::pair<size_t, size_t>> staging_in_use_;  // (offset, bytes), sorted by offset
  // Eager copies whose expose completed before the reader read them: (slot, done word, call, offset).
  struct Lingering {
    const Slot* slot;
    const uint64_t* done;
    uint64_t call;
    size_t offset;
  };
  std::vector<Lingering> lingering_;
};

}  // namespace cclab
