// A rank's connection to the rendezvous store (bootstrap/tcp_store_server.h): set, wait for and
// delete keys, each request bounded by a deadline.
#pragma once

#include <cstddef>
#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include "bootstrap/store_address.h"
#include "bootstrap/unique_fd.h"
#include "cclab/deadline.h"

namespace cclab {

/// One connection to a TcpStoreServer. Methods are thread-safe (serialized by a mutex). After any
/// error (timeout waiting for a reply, lost connection) the client refuses further requests,
/// because a reply might still be in flight and would be mistaken for the next one's.
class TcpStoreClient {
 public:
  /// Connects, retrying (the server may not be up yet) until `connect_deadline`, then presents
  /// `token`. TimeoutError if no connection could be made in time; Error if the token is refused.
  /// `reply_grace`: how long a reply may be late (a WAIT's beyond its deadline) before the server
  /// counts as gone: reply_grace_for(the job's timeout).
  TcpStoreClient(StoreAddress address, const std::string& token, Deadline connect_deadline,
                 std::chrono::milliseconds reply_grace = std::chrono::seconds(10));

  /// A busy host may delay a reply a little; a dead link delays it forever, and the job's failure
  /// must still end within its timeout plus 5 s (README): half the timeout, from 1 s to 4 s.
  static std::chrono::milliseconds reply_grace_for(double timeout_s);

  void set(const std::string& key, const std::string& value);
  /// Blocks until `key` exists; TimeoutError naming the key if `deadline` passes first.
  std::string get(const std::string& key, Deadline deadline);
  void erase(const std::string& key);

  struct WaitResult {
    std::vector<std::string> values;  // in the order of `keys`; empty when something is missing
    std::vector<size_t> missing;      // indices into `keys` that did not exist by the deadline
  };
  /// Blocks until every key exists or `deadline` passes; never throws TimeoutError itself, so the
  /// caller can say what the missing keys mean.
  WaitResult wait_all(const std::vector<std::string>& keys, Deadline deadline);

  const StoreAddress& address() const { return address_; }

 private:
  std::vector<std::string> request(const std::vector<std::string>& fields, Deadline reply_deadline);

  StoreAddress address_;
  std::chrono::milliseconds reply_grace_;
  UniqueFd socket_;
  bool broken_ = false;
  std::mutex mutex_;
};

}  // namespace cclab
