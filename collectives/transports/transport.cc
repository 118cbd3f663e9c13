#include "cclab/transport.h"

#include <string>

#include "cclab/error.h"

namespace cclab {

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
    if (backoff.expired(deadline))
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
