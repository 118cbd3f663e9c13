#include "transports/shared_memory/mailbox_transport.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "cclab/error.h"

namespace cclab {

// One cache line. Every slot starts with its number in the sender's count of slots, plus one (0:
// never used), so a receiver waiting at slot k for number k + 1 cannot take what an older message
// left there. A message's first slot then has its tag and size and the start of the payload; its
// number is written last and read first. The slots after it hold payload after their number.
struct alignas(64) MailboxTransport::Slot {
  uint64_t sequence;
  uint64_t tag_and_size;  // tag (48 bits) | bytes << 48
  std::byte payload[kFirstSlotBytes];
};

namespace {

constexpr size_t kLine = 64;
constexpr size_t kLaterSlotBytes = kLine - sizeof(uint64_t);  // payload of a slot after the first
static_assert(MailboxTransport::kFirstSlotBytes + 2 * sizeof(uint64_t) == kLine, "a slot is one cache line");
static_assert(MailboxTransport::kMostBytes < (size_t{1} << 16), "the size has 16 bits");
constexpr uint64_t kTakenEvery = MailboxTransport::kSlots / 4;  // how often a receiver says what it took

uint64_t load_acquire(const uint64_t& word) {
  return std::atomic_ref<uint64_t>(const_cast<uint64_t&>(word)).load(std::memory_order_acquire);
}
void store_release(uint64_t& word, uint64_t value) {
  std::atomic_ref<uint64_t>(word).store(value, std::memory_order_release);
}

// A rank's segment: the rings of every sender, then one line per sender for "taken".
size_t ring_bytes() { return MailboxTransport::kSlots * kLine; }
size_t taken_offset(int ranks) { return size_t(ranks) * ring_bytes(); }

// Slots a message of `bytes` takes.
uint64_t slots_for(size_t bytes) {
  const size_t rest = bytes > MailboxTransport::kFirstSlotBytes ? bytes - MailboxTransport::kFirstSlotBytes : 0;
  return 1 + (rest + kLaterSlotBytes - 1) / kLaterSlotBytes;
}
static_assert(MailboxTransport::kMostBytes <=
                  MailboxTransport::kFirstSlotBytes + (MailboxTransport::kSlots / 2 - 1) * kLaterSlotBytes,
              "a message takes at most half a ring");

}  // namespace

// A send or receive through a mailbox. Complete at once when its message went into (or came
// from) a slot; otherwise the transport completes it in progress(), or forgets it when it goes.
class MailboxTransport::MailboxRequest final : public Request {
 public:
  MailboxRequest(MailboxTransport* transport, int peer, size_t bytes, bool is_send, uint64_t tag, const void* source,
                 void* target)
      : Request(peer, bytes, is_send), transport_(transport), tag_(tag), source_(source), target_(target) {}
  ~MailboxRequest() override {
    if (!done_ && transport_) transport_->forget(*this);
  }
  bool complete() override {
    if (!error_.empty()) throw Error(error_);
    return done_;
  }

 private:
  friend class MailboxTransport;
  MailboxTransport* transport_;
  uint64_t tag_;
  const void* source_;
  void* target_;
  bool done_ = false;
  std::string error_;
};

size_t MailboxTransport::segment_bytes(int ranks) { return taken_offset(ranks) + size_t(ranks) * kLine; }

MailboxTransport::MailboxTransport(std::unique_ptr<Transport> inner, std::unique_ptr<NodeSharedMemory> memory)
    : Transport(inner->rank(), inner->size()),
      inner_(std::move(inner)),
      memory_(std::move(memory)),
      peers_(size_t(size())) {
  if (memory_->ranks() != size() || memory_->segment_bytes() < segment_bytes(size()))
    throw Error("mailboxes: the shared memory is too small for " + std::to_string(size()) + " ranks");
  for (int peer = 0; peer < size(); ++peer) {
    if (peer == rank()) continue;  // to itself through the inner transport
    PeerState& state = peers_[size_t(peer)];
    std::byte* mine = memory_->segment(rank());
    std::byte* theirs = memory_->segment(peer);
    state.incoming = reinterpret_cast<Slot*>(mine + size_t(peer) * ring_bytes());
    state.taken_by_me = reinterpret_cast<uint64_t*>(mine + taken_offset(size()) + size_t(peer) * kLine);
    state.outgoing = reinterpret_cast<Slot*>(theirs + size_t(rank()) * ring_bytes());
    state.taken_by_peer = reinterpret_cast<const uint64_t*>(theirs + taken_offset(size()) + size_t(rank()) * kLine);
  }
}

MailboxTransport::~MailboxTransport() {
  // Requests that outlive the transport must not call back into it.
  for (PeerState& state : peers_) {
    for (MailboxRequest* request : state.waiting_sends) request->transport_ = nullptr;
    for (MailboxRequest* request : state.posted_recvs) request->transport_ = nullptr;
  }
}

RequestPtr MailboxTransport::send(int peer, const void* buffer, size_t bytes, uint64_t tag) {
  check_peer(peer);
  count_send(peer, bytes);
  if (!uses_mailbox(peer, bytes)) return inner_->send(peer, buffer, bytes, tag);
  idle_polls_ = 0;
  if (tag >> 48) throw Error("mailboxes: tag " + std::to_string(tag) + " exceeds 48 bits");
  auto request = std::make_unique<MailboxRequest>(this, peer, bytes, true, tag, buffer, nullptr);
  PeerState& state = peers_[size_t(peer)];
  if (!state.waiting_sends.empty() || !try_post(state, *request)) state.waiting_sends.push_back(request.get());
  return request;
}

// Copies a message's payload between `data` and the slots from `first` on, wrapping around the
// ring; going to the slots, numbers the slots after the first.
void MailboxTransport::copy_payload(Slot* ring, uint64_t first, std::byte* data, size_t bytes, bool to_slots) {
  if (bytes == 0) return;  // `data` may be null then
  const size_t head = std::min(bytes, kFirstSlotBytes);
  std::byte* slot_bytes = ring[first % kSlots].payload;
  to_slots ? std::memcpy(slot_bytes, data, head) : std::memcpy(data, slot_bytes, head);
  for (size_t done = head, slot = first + 1; done < bytes; done += kLaterSlotBytes, ++slot) {
    const size_t part = std::min(kLaterSlotBytes, bytes - done);
    Slot& line = ring[slot % kSlots];
    std::byte* payload = reinterpret_cast<std::byte*>(&line) + sizeof(uint64_t);
    if (to_slots) {
      std::atomic_ref<uint64_t>(line.sequence).store(slot + 1, std::memory_order_relaxed);
      std::memcpy(payload, data + done, part);
    } else {
      std::memcpy(data + done, payload, part);
    }
  }
}

// Puts the message into the next slots of the peer's ring if the peer has taken the messages
// those slots held before.
bool MailboxTransport::try_post(PeerState& state, MailboxRequest& request) {
  const uint64_t slots = slots_for(request.bytes);
  if (state.sent + slots - state.taken_seen > kSlots) {
    state.taken_seen = load_acquire(*state.taken_by_peer);
    if (state.sent + slots - state.taken_seen > kSlots) return false;
  }
  Slot& first = state.outgoing[state.sent % kSlots];
  copy_payload(state.outgoing, state.sent, static_cast<std::byte*>(const_cast<void*>(request.source_)), request.bytes,
               true);
  first.tag_and_size = request.tag_ | uint64_t(request.bytes) << 48;
  store_release(first.sequence, state.sent + 1);
  state.sent += slots;
  request.done_ = true;
  return true;
}

// Completes a receive with a message of `bytes`: `copy` moves the payload into its buffer if the
// lengths agree, else the request fails naming both.
template <typename Copy>
void MailboxTransport::complete_receive(MailboxRequest& request, size_t bytes, Copy copy) {
  if (request.bytes != bytes)
    request.error_ = "mailboxes: rank " + std::to_string(rank()) + " expected " + std::to_string(request.bytes) +
                     " bytes from rank " + std::to_string(request.peer) + ", the message has " + std::to_string(bytes);
  else if (bytes > 0)  // the buffer may be null then
    copy(static_cast<std::byte*>(request.target_));
  request.done_ = true;
}

RequestPtr MailboxTransport::recv(int peer, void* buffer, size_t bytes, uint64_t tag) {
  check_peer(peer);
  count_receive(peer, bytes);
  if (!uses_mailbox(peer, bytes)) return inner_->recv(peer, buffer, bytes, tag);
  idle_polls_ = 0;
  auto request = std::make_unique<MailboxRequest>(this, peer, bytes, false, tag, nullptr, buffer);
  PeerState& state = peers_[size_t(peer)];
  // Set-aside messages came before those still in the ring.
  auto arrived = std::find_if(state.arrived.begin(), state.arrived.end(),
                              [&](const Arrived& message) { return message.tag == tag; });
  if (arrived != state.arrived.end()) {
    complete_receive(*request, arrived->payload.size(),
                     [&](std::byte* target) { std::memcpy(target, arrived->payload.data(), bytes); });
    state.arrived.erase(arrived);
    return request;
  }
  state.posted_recvs.push_back(request.get());
  drain(state, /*set_aside_unclaimed=*/false);
  return request;
}

// Takes the sender's messages in order while a posted receive claims them. A message no receive
// claims stays in the ring, where it holds its sender back when the ring fills (the receiver's
// pace sets the sender's), unless a posted receive waits behind it or `set_aside_unclaimed`: then
// it moves to the list of arrived ones.
bool MailboxTransport::drain(PeerState& state, bool set_aside_unclaimed) {
  bool moved = false;
  for (;;) {
    Slot& first = state.incoming[state.received % kSlots];
    if (load_acquire(first.sequence) != state.received + 1) break;
    const uint64_t tag = first.tag_and_size & ((uint64_t{1} << 48) - 1);
    const size_t bytes = size_t(first.tag_and_size >> 48);
    auto posted = std::find_if(state.posted_recvs.begin(), state.posted_recvs.end(),
                               [&](const MailboxRequest* request) { return request->tag_ == tag; });
    if (posted != state.posted_recvs.end()) {
      complete_receive(**posted, bytes,
                       [&](std::byte* target) { copy_payload(state.incoming, state.received, target, bytes, false); });
      state.posted_recvs.erase(posted);
    } else if (set_aside_unclaimed || !state.posted_recvs.empty()) {
      Arrived& arrived = state.arrived.emplace_back(Arrived{tag, std::vector<std::byte>(bytes)});
      copy_payload(state.incoming, state.received, arrived.payload.data(), bytes, false);
    } else {
      break;
    }
    const uint64_t before = state.received;
    state.received += slots_for(bytes);
    if (state.received / kTakenEvery != before / kTakenEvery) store_release(*state.taken_by_me, state.received);
    moved = true;
  }
  return moved;
}

bool MailboxTransport::progress() {
  bool moved = inner_->progress();
  // A receiver that polls in vain may be waiting for what a sender held back by a full ring would
  // send next: it sets the unclaimed messages aside, so no sender waits on a receive not yet posted.
  const bool set_aside = idle_polls_ >= kSetAsideAfterIdlePolls;
  for (PeerState& state : peers_) {
    if (!state.incoming) continue;
    moved = drain(state, set_aside) || moved;
    while (!state.waiting_sends.empty() && try_post(state, *state.waiting_sends.front())) {
      state.waiting_sends.pop_front();
      moved = true;
    }
  }
  idle_polls_ = moved ? 0 : idle_polls_ + 1;
  return moved;
}

void MailboxTransport::forget(MailboxRequest& request) {
  PeerState& state = peers_[size_t(request.peer)];
  if (request.is_send) {
    auto found = std::find(state.waiting_sends.begin(), state.waiting_sends.end(), &request);
    if (found != state.waiting_sends.end()) state.waiting_sends.erase(found);
  } else {
    auto found = std::find(state.posted_recvs.begin(), state.posted_recvs.end(), &request);
    if (found != state.posted_recvs.end()) state.posted_recvs.erase(found);
  }
}

}  // namespace cclab
