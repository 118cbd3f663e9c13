// Small messages between the ranks of one node through mailboxes in node-shared memory; every
// other message through the inner transport (UCX).
//
// Why: a latency-bound collective (recursive doubling at 8 bytes, a ring at a few KiB) is a chain
// of small messages, and within a node each costs what its cache lines cost to cross between two
// cores. UCX 1.13's shared-memory transport moves an 8-byte tagged message through a 128-byte FIFO
// element and the receiver's FIFO head (a compare-and-swap); a mailbox message is its cache lines
// and nothing else. Above kMostBytes UCX's single copy wins over copying line by line. Figures:
// docs/measurements.md.
//
// Layout: each rank's NodeSharedMemory segment holds one ring of kSlots 64-byte slots per sender
// on the node (the messages that sender has for it), and one line per sender where it says how
// many of that sender's slots it has taken. A message takes consecutive slots (wrapping around),
// each starting with its number in the sender's count of slots: the first holds the tag and size
// and kFirstSlotBytes of payload, the others 56 bytes of payload each. The sender writes the
// payload and the tag, then the first slot's number with release; the receiver waiting at slot k
// sees number k + 1 with acquire (a number an older message left there is smaller), copies the
// payload out, and says every kSlots/4 slots how many it has taken, so a sender reuses slots only
// after their message was read.
//
// Messages stay in the ring until a receive claims them, so a sender that runs ahead of its
// receiver (a root's broadcasts) waits for ring space instead of the receiver copying every message
// aside: the slower side sets the pace, and every message is copied once. A receiver that polls in
// vain for a while, or whose posted receive waits behind unclaimed messages, sets them aside in a
// per-sender list, so a sender never waits on a receive that comes only after what it would send.
//
// Which path a message takes is decided alike on both sides from what both know: the peer is on
// this node and the message is at most kMostBytes long (a receive names its exact length).
// Messages are matched by (sender, tag) as the inner transport matches them. A sender whose ring to
// a peer is full keeps its messages in order and posts them as that peer takes older ones
// (progress()).
//
// Counters: this transport counts every message once, at post, as every transport does.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "cclab/node_shared_memory.h"
#include "cclab/transport.h"

namespace cclab {

class MailboxTransport : public Transport {
 public:
  static constexpr size_t kSlots = 64;
  static constexpr size_t kFirstSlotBytes = 48;
  static constexpr size_t kMostBytes = 512;
  /// Bytes of one rank's segment for `ranks` ranks on the node.
  static size_t segment_bytes(int ranks);

  /// `memory` is a NodeSharedMemory of every rank of the job (one node), of at least
  /// segment_bytes(ranks) per rank, zero-filled, created after `inner`.
  MailboxTransport(std::unique_ptr<Transport> inner, std::unique_ptr<NodeSharedMemory> memory);
  ~MailboxTransport() override;

  std::string name() const override { return inner_->name() + "+shm"; }
  /// The inner transport's: it carries every message the mailboxes do not.
  std::string wire_to(int peer) const override { return inner_->wire_to(peer); }
  RequestPtr send(int peer, const void* buffer, size_t bytes, uint64_t tag) override;
  RequestPtr recv(int peer, void* buffer, size_t bytes, uint64_t tag) override;
  bool progress() override;
  void shutdown() override { inner_->shutdown(); }

  class MailboxRequest;

 private:
  struct Slot;
  struct Arrived {
    uint64_t tag;
    std::vector<std::byte> payload;
  };
  struct PeerState {
    Slot* outgoing = nullptr;           // my ring in the peer's segment
    const uint64_t* taken_by_peer = nullptr;  // how many of my slots the peer has taken
    Slot* incoming = nullptr;           // the peer's ring in my segment
    uint64_t* taken_by_me = nullptr;    // how many of its slots I have taken
    uint64_t sent = 0, taken_seen = 0, received = 0;  // in slots
    std::deque<MailboxRequest*> waiting_sends;  // ring full: in order
    std::vector<MailboxRequest*> posted_recvs;
    std::deque<Arrived> arrived;        // messages before their receive
  };

  bool uses_mailbox(int peer, size_t bytes) const { return bytes <= kMostBytes && peers_[size_t(peer)].incoming; }
  static void copy_payload(Slot* ring, uint64_t first, std::byte* data, size_t bytes, bool to_slots);
  template <typename Copy>
  void complete_receive(MailboxRequest& request, size_t bytes, Copy copy);
  bool try_post(PeerState& state, MailboxRequest& request);
  bool drain(PeerState& state, bool set_aside_unclaimed);
  void forget(MailboxRequest& request);

  std::unique_ptr<Transport> inner_;
  std::unique_ptr<NodeSharedMemory> memory_;
  std::vector<PeerState> peers_;
  // Polls in a row that moved nothing; from kSetAsideAfterIdlePolls on, progress() sets aside
  // the messages no receive claims yet.
  static constexpr unsigned kSetAsideAfterIdlePolls = 64;
  unsigned idle_polls_ = 0;
};

}  // namespace cclab
