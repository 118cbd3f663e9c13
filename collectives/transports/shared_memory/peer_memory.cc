#include "cclab/peer_memory.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <optional>

#include "cclab/comm.h"
#include "cclab/error.h"
#include "cclab/schedule.h"

namespace cclab {
namespace {

// Calls of different process groups (the group id is bits 16 and up of a sequence, process_group.h)
// start in different orders on different ranks, so a group's call must never wait for a slot that
// another group's call holds: the reader may start that call only after this one ends. Groups get
// slots of their own (up to kGroupLanes groups, by id); within a group calls start in one order on
// every rank, and a later call may wait for an earlier one's slot.
constexpr uint64_t kGroupLanes = 4;
constexpr size_t kSlotsPerPair = kGroupLanes * PeerMemory::kCallsInFlight * kPeerReadTags;

// `reader` is the reader's position on the node.
size_t slot_index(int reader, uint32_t tag, uint64_t sequence) {
  const uint64_t lane = (sequence >> 16) % kGroupLanes;
  return size_t(reader) * kSlotsPerPair +
         size_t(lane * PeerMemory::kCallsInFlight + sequence % PeerMemory::kCallsInFlight) * kPeerReadTags + tag;
}

uint64_t load_acquire(const uint64_t& word) {
  return std::atomic_ref<uint64_t>(const_cast<uint64_t&>(word)).load(std::memory_order_acquire);
}
void store_release(uint64_t& word, uint64_t value) {
  std::atomic_ref<uint64_t>(word).store(value, std::memory_order_release);
}

}  // namespace

// Written by the owner of a region for one reader: where the region lies, then (last, with
// release) which call exposed it. Call numbers are stored plus one, so zero-filled memory means
// "never exposed".
struct PeerMemory::Slot {
  uint64_t call;
  uint64_t block;
  uint64_t offset;
  uint64_t bytes;
};

// The owner's segment of the flag memory: its slots for each reader, then for each reader the
// words in which that reader says it is done (apart, so owner and reader write different lines).
PeerMemory::Slot& PeerMemory::slot(int owner, int reader, uint32_t tag, uint64_t sequence) const {
  auto* slots = reinterpret_cast<Slot*>(flags_->segment(owner));
  return slots[slot_index(flags_->index_on_node(reader), tag, sequence)];
}

uint64_t& PeerMemory::done_word(int owner, int reader, uint32_t tag, uint64_t sequence) const {
  auto* done =
      reinterpret_cast<uint64_t*>(flags_->segment(owner) + size_t(flags_->ranks()) * kSlotsPerPair * sizeof(Slot));
  return done[slot_index(flags_->index_on_node(reader), tag, sequence)];
}

// Posted when its flag slot is free: the slot's previous call (another call in flight with the
// same slot) must have been read first, so a request may wait for that before it says where its
// region is. A small region is copied into the staging area whether it is registered or not, and
// the request completes at once, as an eager send does: the owner need not wait a round trip for
// a few cache lines; the staging copy lingers until the reader is done with it.
class PeerMemory::ExposeRequest : public Request {
 public:
  ExposeRequest(PeerMemory& memory, int reader, Slot& slot, const uint64_t& done, uint64_t call, const void* region,
                size_t bytes, TrafficMeter& traffic)
      : Request(reader, bytes, /*is_send=*/true),
        memory_(memory),
        slot_(slot),
        done_(done),
        call_(call),
        region_(region),
        traffic_(traffic) {
    try_to_post();
  }
  ~ExposeRequest() override { release_staging(); }
  bool complete() override {
    if (finished_) return true;
    if (!posted_ && !try_to_post()) return false;
    if (!eager_ && load_acquire(done_) != call_) return false;
    traffic_.count_direct_traffic(peer, bytes, 0);
    release_staging();
    return finished_ = true;
  }

 private:
  bool try_to_post() {
    const uint64_t previous = load_acquire(slot_.call);
    if (previous != 0 && load_acquire(done_) != previous) return false;
    const auto location = bytes <= kEagerBytes ? std::nullopt : memory_.locate(region_, bytes);
    if (location) {
      slot_.block = location->first;
      slot_.offset = location->second;
    } else {
      const std::optional<size_t> staging = memory_.take_staging(bytes);
      if (!staging) return false;  // full of copies peers have not read yet
      staging_ = *staging;
      if (bytes > 0) std::memcpy(memory_.staging_->segment(memory_.rank_) + staging_, region_, bytes);
      slot_.block = memory_.staging_block_;
      slot_.offset = staging_;
    }
    slot_.bytes = bytes;
    store_release(slot_.call, call_);
    if (bytes <= kEagerBytes) {
      eager_ = true;
      memory_.lingering_.push_back({&slot_, &done_, call_, staging_});
      staging_ = SIZE_MAX;
    }
    return posted_ = true;
  }
  void release_staging() {
    if (staging_ != SIZE_MAX) memory_.give_back_staging(staging_);
    staging_ = SIZE_MAX;
  }
  PeerMemory& memory_;
  Slot& slot_;
  const uint64_t& done_;
  uint64_t call_;
  const void* region_;
  size_t staging_ = SIZE_MAX;  // where the region was copied, when it is not in a registered array
  TrafficMeter& traffic_;
  bool posted_ = false, finished_ = false, eager_ = false;
};

class PeerMemory::ReadRequest : public Request {
 public:
  ReadRequest(PeerMemory& memory, int owner, const Slot& slot, uint64_t& done, uint64_t call, size_t bytes,
              std::function<void(const std::byte*)> consume, TrafficMeter& traffic)
      : Request(owner, bytes, /*is_send=*/false),
        memory_(memory),
        slot_(slot),
        done_(done),
        call_(call),
        consume_(std::move(consume)),
        traffic_(traffic) {}
  bool complete() override {
    if (finished_) return true;
    if (load_acquire(slot_.call) != call_) return false;
    if (slot_.bytes != bytes)
      throw Error("rank " + std::to_string(memory_.rank_) + " reads " + std::to_string(bytes) + " bytes of rank " +
                  std::to_string(peer) + ", which exposed " + std::to_string(slot_.bytes));
    const std::shared_ptr<NodeSharedMemory> block =
        slot_.block < memory_.blocks_.size() ? memory_.blocks_[slot_.block].lock() : nullptr;
    if (!block || slot_.offset > block->segment_bytes() || bytes > block->segment_bytes() - slot_.offset)
      throw Error("rank " + std::to_string(peer) + " exposed memory rank " + std::to_string(memory_.rank_) +
                  " has no mapping of");
    consume_(block->segment(peer) + slot_.offset);
    store_release(done_, call_);
    traffic_.count_direct_traffic(peer, 0, bytes);
    return finished_ = true;
  }

 private:
  PeerMemory& memory_;
  const Slot& slot_;
  uint64_t& done_;
  uint64_t call_;
  std::function<void(const std::byte*)> consume_;
  TrafficMeter& traffic_;
  bool finished_ = false;
};

PeerMemory::PeerMemory(int rank, std::unique_ptr<NodeSharedMemory> flags) : rank_(rank), flags_(std::move(flags)) {
  blocks_.emplace_back();  // block 0: none (a zero-filled slot names no block)
}

PeerMemory::~PeerMemory() = default;

std::unique_ptr<PeerMemory> PeerMemory::create(Comm& comm, std::string* why_not) {
  const auto node_ranks = size_t(comm.topology().ranks_on_node_of(comm.rank()));
  const size_t bytes = node_ranks * kSlotsPerPair * (sizeof(Slot) + sizeof(uint64_t));
  auto flags = NodeSharedMemory::create_on_each_node(comm, bytes, why_not);
  if (!flags) return nullptr;
  return std::unique_ptr<PeerMemory>(new PeerMemory(comm.rank(), std::move(flags)));
}

std::shared_ptr<std::byte> PeerMemory::allocate(Comm& comm, size_t bytes, std::string* why_not) {
  std::shared_ptr<NodeSharedMemory> block = NodeSharedMemory::create_on_each_node(comm, bytes, why_not);
  if (!block) return nullptr;
  blocks_.push_back(block);
  return std::shared_ptr<std::byte>(block, block->segment(rank_));
}

void PeerMemory::reserve_staging(Comm& comm, size_t bytes) {
  size_t needed = 0;
  for (const std::string& wanted : comm.allgather(std::to_string(bytes))) needed = std::max(needed, std::stoul(wanted));
  if (needed == 0 || (staging_ && staging_->segment_bytes() >= needed)) return;
  reclaim_lingering();  // every rank is here: their reads of earlier calls are done
  if (!staging_in_use_.empty()) throw Error("the staging area for peer reads grows while a call uses it");
  std::string why_not;
  std::shared_ptr<NodeSharedMemory> staging = NodeSharedMemory::create_on_each_node(comm, needed, &why_not);
  if (!staging) throw Error("cannot map " + std::to_string(needed) + " bytes of staging for peer reads: " + why_not);
  staging_ = std::move(staging);
  staging_block_ = blocks_.size();
  blocks_.push_back(staging_);
}

std::optional<std::pair<uint64_t, size_t>> PeerMemory::locate(const void* address, size_t bytes) const {
  const auto* at = static_cast<const std::byte*>(address);
  for (size_t b = 1; b < blocks_.size(); ++b) {
    const std::shared_ptr<NodeSharedMemory> block = blocks_[b].lock();
    if (!block || block == staging_) continue;
    const std::byte* mine = block->segment(rank_);
    if (at >= mine && at <= mine + block->segment_bytes() && bytes <= size_t(mine + block->segment_bytes() - at))
      return std::pair{uint64_t(b), size_t(at - mine)};
  }
  return std::nullopt;
}

std::optional<size_t> PeerMemory::take_staging(size_t bytes) {
  reclaim_lingering();
  const size_t capacity = staging_ ? staging_->segment_bytes() : 0;
  const size_t aligned = (bytes + 63) / 64 * 64;  // whole cache lines: two regions never share one
  size_t offset = 0;
  auto next = staging_in_use_.begin();
  for (; next != staging_in_use_.end() && next->first < offset + aligned; ++next)
    offset = std::max(offset, next->first + (next->second + 63) / 64 * 64);
  if (offset + aligned <= capacity) {
    staging_in_use_.insert(next, {offset, bytes});
    return offset;
  }
  if (!staging_in_use_.empty()) return std::nullopt;  // room comes back as readers finish
  throw Error("rank " + std::to_string(rank_) + ": no room in the staging area for peer reads (" +
              std::to_string(capacity) + " bytes) for " + std::to_string(bytes));
}

void PeerMemory::reclaim_lingering() {
  // Eager copies the readers are done with (or whose slot a later call holds: read too) go back.
  std::erase_if(lingering_, [&](const Lingering& copy) {
    if (load_acquire(*copy.done) != copy.call && load_acquire(copy.slot->call) == copy.call) return false;
    give_back_staging(copy.offset);
    return true;
  });
}

void PeerMemory::give_back_staging(size_t offset) {
  std::erase_if(staging_in_use_, [&](const auto& used) { return used.first == offset; });
}

RequestPtr PeerMemory::expose(int reader, uint32_t tag, uint64_t sequence, const void* region, size_t bytes,
                              TrafficMeter& traffic) {
  if (!addresses(reader) || tag >= kPeerReadTags)
    throw Error("rank " + std::to_string(rank_) + " cannot expose memory to rank " + std::to_string(reader) +
                " under tag " + std::to_string(tag));
  return std::make_unique<ExposeRequest>(*this, reader, slot(rank_, reader, tag, sequence),
                                         done_word(rank_, reader, tag, sequence), sequence + 1, region, bytes, traffic);
}

RequestPtr PeerMemory::read(int owner, uint32_t tag, uint64_t sequence, size_t bytes,
                            std::function<void(const std::byte*)> consume, TrafficMeter& traffic) {
  if (!addresses(owner) || tag >= kPeerReadTags)
    throw Error("rank " + std::to_string(rank_) + " cannot read memory of rank " + std::to_string(owner) +
                " under tag " + std::to_string(tag));
  auto request = std::make_unique<ReadRequest>(*this, owner, slot(owner, rank_, tag, sequence),
                                               done_word(owner, rank_, tag, sequence), sequence + 1, bytes,
                                               std::move(consume), traffic);
  request->complete();  // often the owner was first: no need to wait for the next poll
  return request;
}

}  // namespace cclab
