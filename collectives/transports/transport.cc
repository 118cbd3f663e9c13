#include "cclab/transport.h"

#include <numeric>
#include <string>

#include "cclab/error.h"

namespace cclab {

uint64_t TrafficCounters::total_bytes_sent() const {
  return std::accumulate(bytes_sent.begin(), bytes_sent.end(), uint64_t{0});
}
uint64_t TrafficCounters::total_bytes_received() const {
  return std::accumulate(bytes_received.begin(), bytes_received.end(), uint64_t{0});
}

void Transport::count_send(int peer, size_t bytes) {
  counters_.bytes_sent[peer] += bytes;
  counters_.messages_sent[peer] += 1;
}
void Transport::count_receive(int peer, size_t bytes) {
  counters_.bytes_received[peer] += bytes;
  counters_.messages_received[peer] += 1;
}
void Transport::count_direct_traffic(int peer, size_t bytes_sent, size_t bytes_received) {
  check_peer(peer);
  if (bytes_sent > 0) count_send(peer, bytes_sent);
  if (bytes_received > 0) count_receive(peer, bytes_received);
}
void Transport::check_peer(int peer) const {
  if (peer < 0 || peer >= size_ || peer == rank_)
    throw Error(name() + ": rank " + std::to_string(rank_) + " cannot talk to peer " + std::to_string(peer));
}

void Transport::wait(Request& request, Deadline deadline) {
  Backoff backoff(yield_when_idle_);
  while (!request.complete()) {
    if (progress()) {
      backoff.reset();
      continue;
    }
    if (deadline.passed())
      throw TimeoutError("rank " + std::to_string(rank_) + " timed out waiting for rank " +
                         std::to_string(request.peer) + " (" + (request.is_send ? "send" : "receive") + " of " +
                         std::to_string(request.bytes) + " bytes)");
    backoff.idle();
  }
}

void Transport::wait_all(std::vector<RequestPtr>& requests, Deadline deadline) {
  for (auto& request : requests)
    if (request) wait(*request, deadline);
}

}  // namespace cclab
