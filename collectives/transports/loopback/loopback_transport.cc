#include "transports/loopback/loopback_transport.h"

#include <cstring>

#include "cclab/error.h"

namespace cclab {
namespace {

class LoopbackRequest : public Request {
 public:
  LoopbackRequest(int peer, size_t bytes, bool is_send, std::shared_ptr<std::atomic<int>> state)
      : Request(peer, bytes, is_send), state_(std::move(state)) {}
  bool complete() override {
    const int state = state_->load(std::memory_order_acquire);
    if (state == 2) throw Error("loopback: message size mismatch with peer " + std::to_string(peer));
    return state == 1;
  }

 private:
  std::shared_ptr<std::atomic<int>> state_;
};

// Copies a matched pair and completes both sides.
void deliver(std::byte* to, size_t to_bytes, const std::byte* from, size_t from_bytes,
             std::atomic<int>& send_state, std::atomic<int>& recv_state) {
  const int outcome = to_bytes == from_bytes ? 1 : 2;
  if (outcome == 1 && from_bytes > 0) std::memcpy(to, from, from_bytes);
  send_state.store(outcome, std::memory_order_release);
  recv_state.store(outcome, std::memory_order_release);
}

}  // namespace

RequestPtr LoopbackTransport::send(int peer, const void* buffer, size_t bytes, uint64_t tag) {
  check_peer(peer);
  count_send(peer, bytes);
  auto state = std::make_shared<std::atomic<int>>(0);
  const uint64_t wire = wire_tag(tag, rank());
  auto& box = fabric_->mailboxes_[size_t(peer)];
  std::lock_guard lock(box.mutex);
  for (auto it = box.posted_receives.begin(); it != box.posted_receives.end(); ++it) {
    if (it->wire_tag == wire) {
      deliver(it->buffer, it->bytes, static_cast<const std::byte*>(buffer), bytes, *state, *it->state);
      box.posted_receives.erase(it);
      return std::make_unique<LoopbackRequest>(peer, bytes, true, state);
    }
  }
  box.unexpected_sends.push_back(
      {rank(), wire, static_cast<std::byte*>(const_cast<void*>(buffer)), bytes, state});
  return std::make_unique<LoopbackRequest>(peer, bytes, true, state);
}

RequestPtr LoopbackTransport::recv(int peer, void* buffer, size_t bytes, uint64_t tag) {
  check_peer(peer);
  count_receive(peer, bytes);
  auto state = std::make_shared<std::atomic<int>>(0);
  const uint64_t wire = wire_tag(tag, peer);
  auto& box = fabric_->mailboxes_[size_t(rank())];
  std::lock_guard lock(box.mutex);
  for (auto it = box.unexpected_sends.begin(); it != box.unexpected_sends.end(); ++it) {
    if (it->wire_tag == wire) {
      deliver(static_cast<std::byte*>(buffer), bytes, it->buffer, it->bytes, *it->state, *state);
      box.unexpected_sends.erase(it);
      return std::make_unique<LoopbackRequest>(peer, bytes, false, state);
    }
  }
  box.posted_receives.push_back({peer, wire, static_cast<std::byte*>(buffer), bytes, state});
  return std::make_unique<LoopbackRequest>(peer, bytes, false, state);
}

}  // namespace cclab
