// Ranks as threads of one process (DESIGN 3.2), for fast unit tests of schedules and executors.
// A send completes only when the receiver has taken its data (rendezvous), as large messages do
// on real transports, so tests see the same ordering constraints.
#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>

#include "cclab/transport.h"

namespace cclab {

/// The shared "wire" of one group of loopback ranks.
class LoopbackFabric {
 public:
  explicit LoopbackFabric(int size) : mailboxes_(size) {}
  int size() const { return int(mailboxes_.size()); }

 private:
  friend class LoopbackTransport;
  struct Operation {
    int peer;
    uint64_t wire_tag;
    std::byte* buffer;
    size_t bytes;
    std::shared_ptr<std::atomic<int>> state;  // 0 pending, 1 done, 2 size mismatch
  };
  struct Mailbox {
    std::mutex mutex;
    std::deque<Operation> unexpected_sends;  // sends that arrived before their receive
    std::deque<Operation> posted_receives;
  };
  std::vector<Mailbox> mailboxes_;
};

class LoopbackTransport : public Transport {
 public:
  LoopbackTransport(std::shared_ptr<LoopbackFabric> fabric, int rank)
      : Transport(rank, fabric->size()), fabric_(std::move(fabric)) {}
  std::string name() const override { return "loopback"; }
  RequestPtr send(int peer, const void* buffer, size_t bytes, uint64_t tag) override;
  RequestPtr recv(int peer, void* buffer, size_t bytes, uint64_t tag) override;
  bool progress() override { return false; }  // matching happens when operations are posted

 private:
  std::shared_ptr<LoopbackFabric> fabric_;
};

}  // namespace cclab
