// A small key-value rendezvous store over TCP (in the spirit of Gloo's rendezvous::Store and
// PyTorch's TCPStore), and the Bootstrap built on it for the local and env launchers.
//
// One process runs a TcpStoreServer (the local launcher's supervisor, or rank 0 under the env
// launcher); every rank holds one TcpStoreClient connection to it. The server only ever answers
// peers that first present the job's token, so other users on the host (or the network, when it
// listens beyond loopback) cannot read or inject rendezvous data.
//
// Wire format: every message is a frame: u32 payload length (big-endian), then the payload, which
// is a list of fields, each a u32 length (big-endian) and its bytes. The first field of a request
// names the operation; the first field of a reply is "OK", "TIMEOUT" or "ERR".
//   HELLO token            -> OK | ERR reason (and the server closes the connection)
//   SET key value          -> OK
//   WAIT timeout_ms key... -> OK value...            once every key exists
//                          -> TIMEOUT index...       when timeout_ms passed; indices of missing keys
//   DEL key                -> OK
// The protocol is strictly request/reply: a client has at most one request in flight.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cclab/bootstrap.h"
#include "cclab/deadline.h"

namespace cclab {

/// A file descriptor that closes itself.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

/// A fresh random job token: 128 bits from /dev/urandom as 32 lowercase hex digits.
std::string make_job_token();

/// Where a store listens: "host:port", or "[v6 address]:port".
struct StoreAddress {
  std::string host;
  uint16_t port = 0;
  std::string to_string() const;
};
/// Parses "host:port" / "[::1]:port"; UsageError naming `what` (e.g. "CCLAB_STORE") if malformed.
StoreAddress parse_store_address(const std::string& text, const std::string& what = "store address");

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

/// One connection to a TcpStoreServer. Methods are thread-safe (serialized by a mutex). After any
/// error (timeout waiting for a reply, lost connection) the client refuses further requests,
/// because a reply might still be in flight and would be mistaken for the next one's.
class TcpStoreClient {
 public:
  /// Connects, retrying (the server may not be up yet) until `connect_deadline`, then presents
  /// `token`. TimeoutError if no connection could be made in time; Error if the token is refused.
  TcpStoreClient(StoreAddress address, const std::string& token, Deadline connect_deadline);

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
  UniqueFd socket_;
  bool broken_ = false;
  std::mutex mutex_;
};

/// Bootstrap over a TcpStoreClient: allgather round r writes "ag/<r>/<rank>" and waits for every
/// rank's key of that round. Optionally owns the server (rank 0 under the env launcher).
class TcpStoreBootstrap : public Bootstrap {
 public:
  /// `timeout_s` bounds every allgather; `launcher` is what launcher() reports ("local", "env").
  TcpStoreBootstrap(std::unique_ptr<TcpStoreClient> client, int rank, int size, std::string launcher,
                    double timeout_s, std::unique_ptr<TcpStoreServer> hosted_server = nullptr);
  ~TcpStoreBootstrap() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::vector<std::string> allgather(const std::string& mine) override;
  std::string launcher() const override { return launcher_; }

  /// allgather with an explicit deadline (join_job's rendezvous counts connecting too);
  /// `timeout_s` is only what the TimeoutError message reports.
  std::vector<std::string> allgather(const std::string& mine, Deadline deadline, double timeout_s);

 private:
  // Declared first so it is destroyed last: our own client must disconnect before the server goes.
  std::unique_ptr<TcpStoreServer> hosted_server_;
  std::unique_ptr<TcpStoreClient> client_;
  int rank_;
  int size_;
  std::string launcher_;
  double timeout_s_;
  uint64_t round_ = 0;
};

}  // namespace cclab
