#include "cclab/traffic_meter.h"

#include <numeric>
#include <string>
#include <utility>

#include "cclab/error.h"

namespace cclab {

uint64_t TrafficCounters::total_bytes_sent() const {
  return std::accumulate(bytes_sent.begin(), bytes_sent.end(), uint64_t{0});
}
uint64_t TrafficCounters::total_bytes_received() const {
  return std::accumulate(bytes_received.begin(), bytes_received.end(), uint64_t{0});
}

void TrafficMeter::count_send(int peer, size_t bytes) {
  counters_.bytes_sent[peer] += bytes;
  counters_.messages_sent[peer] += 1;
}
void TrafficMeter::count_receive(int peer, size_t bytes) {
  counters_.bytes_received[peer] += bytes;
  counters_.messages_received[peer] += 1;
}

void TrafficMeter::count_direct_traffic(int peer, size_t bytes_sent, size_t bytes_received) {
  if (peer < 0 || size_t(peer) >= counters_.bytes_sent.size() || peer == rank_)
    throw Error("rank " + std::to_string(rank_) + " has no traffic with peer " + std::to_string(peer));
  if (bytes_sent > 0) count_send(peer, bytes_sent);
  if (bytes_received > 0) count_receive(peer, bytes_received);
  if (parent_) parent_->count_direct_traffic(parent_peer_[size_t(peer)], bytes_sent, bytes_received);
}

void TrafficMeter::also_count_direct_traffic_in(TrafficMeter& parent, std::vector<int> parent_peer) {
  parent_ = &parent;
  parent_peer_ = std::move(parent_peer);
}

}  // namespace cclab
