// Nonblocking, tagged point-to-point transport (DESIGN 3.2).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cclab/deadline.h"
#include "cclab/traffic_meter.h"

namespace cclab {

/// The 64-bit wire tag is (sequence:24 | step:24 | sender:16). Callers pass the upper 48 bits
/// (`message_tag`); the transport adds the sender, so a receive names its peer exactly.
constexpr int kTagSenderBits = 16;
constexpr uint64_t kMaxRanks = uint64_t{1} << kTagSenderBits;
inline uint64_t message_tag(uint64_t sequence, uint64_t step) {
  return ((sequence & 0xFFFFFF) << 24) | (step & 0xFFFFFF);
}
inline uint64_t wire_tag(uint64_t tag, int sender) { return (tag << kTagSenderBits) | uint64_t(sender); }

/// One posted send or receive.
class Request {
 public:
  Request(int peer, size_t bytes, bool is_send) : peer(peer), bytes(bytes), is_send(is_send) {}
  virtual ~Request() = default;
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;
  /// True once the operation finished; never blocks. Transport::progress() moves it forward.
  virtual bool complete() = 0;
  const int peer;
  const size_t bytes;
  const bool is_send;
};
using RequestPtr = std::unique_ptr<Request>;

class Transport {
 public:
  Transport(int rank, int size) : rank_(rank), size_(size), traffic_(rank, size) {}
  virtual ~Transport() = default;
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  /// "ucx", "loopback", ...
  virtual std::string name() const = 0;
  /// What carries this rank's messages to `peer` ("sysv+cma", "tcp"; cclab/wire.h); by default
  /// the transport's name, for transports that say no more.
  virtual std::string wire_to(int peer) const {
    (void)peer;
    return name();
  }
  int rank() const { return rank_; }
  int size() const { return size_; }

  /// Posts a send of `bytes` from `buffer` to `peer`; the buffer must stay valid until complete.
  virtual RequestPtr send(int peer, const void* buffer, size_t bytes, uint64_t tag) = 0;
  /// Posts a receive of exactly `bytes` from `peer` with `tag` (as given to the sender's send).
  virtual RequestPtr recv(int peer, void* buffer, size_t bytes, uint64_t tag) = 0;
  /// Moves outstanding operations forward; returns true if anything happened.
  virtual bool progress() = 0;
  /// Orderly, collective teardown at the end of a healthy run (flush, close). On error paths just
  /// destroy the transport: its destructor cleans up locally with bounded waits.
  virtual void shutdown() {}

  /// Waits for `request`; throws TimeoutError naming the peer once `deadline` passes.
  void wait(Request& request, Deadline deadline);
  /// Waits for every request in the list (null entries are skipped).
  void wait_all(std::vector<RequestPtr>& requests, Deadline deadline);

  /// When ranks outnumber cores, waiting loops yield the core instead of spinning.
  void set_yield_when_idle(bool yield) { yield_when_idle_ = yield; }
  bool yield_when_idle() const { return yield_when_idle_; }

  /// This rank's traffic with each peer: what this transport posted, and what the caller counts
  /// as moved through node-shared memory.
  TrafficMeter& traffic() { return traffic_; }
  const TrafficCounters& counters() const { return traffic_.counters(); }

 protected:
  void count_send(int peer, size_t bytes) { traffic_.count_send(peer, bytes); }
  void count_receive(int peer, size_t bytes) { traffic_.count_receive(peer, bytes); }
  void check_peer(int peer) const;

 private:
  int rank_, size_;
  TrafficMeter traffic_;
  bool yield_when_idle_ = false;
};

}  // namespace cclab
