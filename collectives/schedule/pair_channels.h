// One FIFO of messages per ordered pair of ranks that are threads of one process: how the device
// queues of such ranks (the host stand-in, and the CUDA loopback queue on one GPU) match each
// pair's messages in issue order, as NCCL does.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "cclab/deadline.h"
#include "cclab/error.h"

namespace cclab {

template <typename Message>
class PairChannels {
 public:
  explicit PairChannels(int ranks) : ranks_(ranks), channels_(size_t(ranks) * size_t(ranks)) {}
  int ranks() const { return ranks_; }

  void put(int from, int to, Message message) {
    {
      std::lock_guard lock(mutex_);
      channel(from, to).push_back(std::move(message));
    }
    arrived_.notify_all();
  }

  /// The next message from `from` to `to`; TimeoutError naming both once `deadline` passes.
  Message take(int from, int to, Deadline deadline) {
    std::unique_lock lock(mutex_);
    auto& queue = channel(from, to);
    if (!arrived_.wait_until(lock, deadline.when, [&] { return !queue.empty(); }))
      throw TimeoutError("rank " + std::to_string(to) + ": no message from rank " + std::to_string(from) +
                         " before the deadline");
    Message message = std::move(queue.front());
    queue.pop_front();
    return message;
  }

 private:
  std::deque<Message>& channel(int from, int to) { return channels_[size_t(from) * size_t(ranks_) + size_t(to)]; }

  int ranks_;
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::vector<std::deque<Message>> channels_;
};

/// Error for a message of `found` bytes where `expected` were posted: NCCL matches each pair's
/// messages in order, so the sizes must agree.
inline Error mismatched_message(int rank, int peer, size_t expected, size_t found) {
  return Error("rank " + std::to_string(rank) + " expected " + std::to_string(expected) + " bytes from rank " +
               std::to_string(peer) + ", the next message has " + std::to_string(found) +
               " (NCCL matches each pair's messages in order)");
}

}  // namespace cclab
