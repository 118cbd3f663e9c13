// The rendezvous store's server: a small key-value store over TCP (in the spirit of Gloo's
// rendezvous::Store and PyTorch's TCPStore) that the ranks of a job meet at. One process runs it
// (the local launcher's supervisor, or rank 0 under the env launcher); every rank holds one
// TcpStoreClient connection to it. It only ever answers peers that first present the job's token
// (bootstrap/job_token.h), so other users on the host, or the network when it listens beyond
// loopback, cannot read or inject rendezvous data. Wire format: bootstrap/tcp_store_protocol.h.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "bootstrap/store_address.h"
#include "cclab/deadline.h"

namespace cclab {

/// The server: a thread that owns a listening socket and every client connection, multiplexed
/// with poll(). Stopping (the destructor) wakes the thread, joins it and closes every socket.
class TcpStoreServer {
 public:
  /// Listens on `bind_address` ("127.0.0.1" by default; "0.0.0.0" or a host's address to serve
  /// other hosts) at `port` (0 picks a free ephemeral port). Throws Error if it cannot listen.
  explicit TcpStoreServer(std::string token, const std::string& bind_address = "127.0.0.1",
                          uint16_t port = 0);
  ~TcpStoreServer();
  TcpStoreServer(const TcpStoreServer&) = delete;
  TcpStoreServer& operator=(const TcpStoreServer&) = delete;

  /// The port actually listened on (the ephemeral one when constructed with 0).
  uint16_t port() const { return port_; }
  /// An address a client on this host can connect to (loopback when listening on a wildcard).
  StoreAddress local_address() const;

  /// Waits until every client that presented the token has disconnected, or until `deadline`.
  /// Returns whether they did. The host of the store calls this before stopping it, so that slower
  /// ranks still get their last replies; it does not wait for clients that never connected.
  bool wait_for_clients_to_leave(Deadline deadline);

 private:
  struct State;
  void serve();

  std::unique_ptr<State> state_;  // poll set, connections and data: owned by the server thread
  std::string bind_address_;
  uint16_t port_ = 0;
  std::thread thread_;
};

}  // namespace cclab
