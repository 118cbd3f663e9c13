// Per-peer counts of a rank's traffic: what a transport's sends and receives post, and what moved
// around them through memory both ranks map (node-shared memory), which only the code that copied
// the bytes knows of. The measured communication volume (DESIGN 3.7) is read from here, so both
// kinds land in the same counters.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace cclab {

/// Bytes and messages per peer, counted when an operation is posted. These are the measured
/// communication volume.
struct TrafficCounters {
  std::vector<uint64_t> bytes_sent, bytes_received, messages_sent, messages_received;
  explicit TrafficCounters(int peers = 0)
      : bytes_sent(peers), bytes_received(peers), messages_sent(peers), messages_received(peers) {}
  uint64_t total_bytes_sent() const;
  uint64_t total_bytes_received() const;
};

/// The TrafficCounters of one transport (Transport::traffic()): the transport counts its sends and
/// receives as it posts them; code that moves data through node-shared memory counts that with
/// count_direct_traffic().
class TrafficMeter {
 public:
  /// Counts the traffic of rank `rank` with each of `peers` ranks.
  TrafficMeter(int rank, int peers) : rank_(rank), counters_(peers) {}
  TrafficMeter(const TrafficMeter&) = delete;
  TrafficMeter& operator=(const TrafficMeter&) = delete;

  void count_send(int peer, size_t bytes);
  void count_receive(int peer, size_t bytes);

  /// Counts traffic that went around send/recv, through memory both ranks map (node-shared
  /// memory): `bytes_sent` that `peer` read from this rank's memory, `bytes_received` this rank
  /// read from the peer's, each as one message. Error for a peer this rank has no traffic with.
  void count_direct_traffic(int peer, size_t bytes_sent, size_t bytes_received);

  /// Direct traffic counted here is counted in `parent` too, with peer p as parent peer
  /// `parent_peer[p]`. A group view (GroupTransport) needs this: its sends and receives reach the
  /// parent's meter through the parent's own send and recv, direct traffic never passes there.
  void also_count_direct_traffic_in(TrafficMeter& parent, std::vector<int> parent_peer);

  const TrafficCounters& counters() const { return counters_; }

 private:
  int rank_;
  TrafficCounters counters_;
  TrafficMeter* parent_ = nullptr;
  std::vector<int> parent_peer_;
};

}  // namespace cclab
