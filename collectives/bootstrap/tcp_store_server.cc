#include "bootstrap/tcp_store_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "bootstrap/job_token.h"
#include "bootstrap/socket_io.h"
#include "bootstrap/tcp_store_protocol.h"
#include "bootstrap/unique_fd.h"
#include "cclab/error.h"

namespace cclab {
namespace {

// A connection that has not authenticated by then is dropped: it holds a slot and nothing else.
constexpr auto kHelloTimeout = std::chrono::seconds(10);
// At most this many connections may wait to authenticate; a new one beyond it closes the oldest, so
// idle strangers cannot exhaust the descriptors a real rank needs (a rank says HELLO at once).
constexpr size_t kMostUnauthenticated = 32;

}  // namespace

struct TcpStoreServer::State {
  struct Connection {
    UniqueFd fd;
    std::string in;   // received bytes not yet parsed into frames
    std::string out;  // reply bytes the socket has not taken yet
    bool authenticated = false;
    bool close_after_flush = false;  // set after refusing a peer: tell it why, then hang up
    Clock::time_point hello_deadline;
    // The pending WAIT, if any: its keys in request order and those still missing.
    bool waiting = false;
    std::vector<std::string> wait_keys;
    std::unordered_set<std::string> wait_missing;
    Clock::time_point wait_deadline;
  };

  std::string token;
  UniqueFd listener;
  UniqueFd wake;  // eventfd: the destructor writes to it to stop the poll loop
  std::atomic<bool> stopping{false};

  std::map<uint64_t, Connection> connections;  // by id: the oldest first
  uint64_t next_connection_id = 1;
  size_t unauthenticated = 0;
  std::unordered_map<std::string, std::string> data;
  // Which connections' pending WAITs need a key, so a SET wakes exactly those.
  std::unordered_map<std::string, std::vector<uint64_t>> waiters;

  // Shared with wait_for_clients_to_leave() on other threads.
  std::mutex count_mutex;
  std::condition_variable count_changed;
  int authenticated_open = 0;
  bool thread_done = false;

  // While accept() fails for lack of descriptors or memory, the listener stays readable; we stop
  // polling it for a moment instead of spinning.
  Clock::time_point accept_paused_until{};

  // One request in flight: a connection is read only while it has no reply pending (neither a WAIT
  // nor reply bytes the peer has not taken), so a peer that pipelines requests without reading the
  // replies is held back by TCP flow control instead of growing the server's queues.
  static bool ready_for_request(const Connection& connection) {
    return !connection.waiting && connection.out.empty() && !connection.close_after_flush;
  }

  void accept_all();
  bool read_from(uint64_t id, Connection& connection);  // false: close it
  void handle_frame(uint64_t id, Connection& connection, const std::vector<std::string>& fields);
  void flush(Connection& connection);
  void reply(Connection& connection, const std::vector<std::string>& fields) {
    connection.out += encode_frame(fields);
    flush(connection);
  }
  void on_key_set(const std::string& key);
  void finish_wait(uint64_t id, Connection& connection);
  void expire_wait(uint64_t id, Connection& connection);
  void forget_waiter(uint64_t id, Connection& connection);
  void close_connection(uint64_t id);
};

void TcpStoreServer::State::accept_all() {
  for (;;) {
    const int fd = ::accept4(listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      // EAGAIN: backlog drained. ECONNABORTED and the like concern one peer only: next poll.
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
        accept_paused_until = Clock::now() + std::chrono::milliseconds(100);
      return;
    }
    set_nodelay(fd);
    if (unauthenticated >= kMostUnauthenticated) {
      for (auto& [id, connection] : connections)
        if (!connection.authenticated) {
          close_connection(id);
          break;
        }
    }
    Connection connection;
    connection.fd.reset(fd);
    connection.hello_deadline = Clock::now() + kHelloTimeout;
    connections.emplace(next_connection_id++, std::move(connection));
    ++unauthenticated;
  }
}

void TcpStoreServer::State::flush(Connection& connection) {
  while (!connection.out.empty()) {
    const ssize_t n = ::send(connection.fd.get(), connection.out.data(), connection.out.size(), MSG_NOSIGNAL);
    if (n > 0) {
      connection.out.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    // EAGAIN: poll for POLLOUT; a real error shows up as POLLERR/POLLHUP and closes it.
    return;
  }
}

bool TcpStoreServer::State::read_from(uint64_t id, Connection& connection) {
  // Reads until one whole request is buffered: what a peer sends beyond it waits in the socket.
  const auto whole_frame = [&] {
    return connection.in.size() >= 4 && connection.in.size() - 4 >= get_u32(connection.in.data());
  };
  char buffer[64 * 1024];
  while (!whole_frame()) {
    if (connection.in.size() >= 4 &&
        get_u32(connection.in.data()) > (connection.authenticated ? kMaxFrame : kMaxHelloFrame))
      return false;
    const ssize_t n = ::recv(connection.fd.get(), buffer, sizeof buffer, 0);
    if (n > 0) {
      connection.in.append(buffer, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) return false;  // the peer hung up
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    return false;
  }
  size_t consumed = 0;
  std::vector<std::string> fields;
  while (connection.in.size() - consumed >= 4 && ready_for_request(connection)) {
    const uint32_t length = get_u32(connection.in.data() + consumed);
    if (length > (connection.authenticated ? kMaxFrame : kMaxHelloFrame)) return false;
    if (connection.in.size() - consumed - 4 < length) break;
    if (!decode_fields(connection.in.data() + consumed + 4, length, fields) || fields.empty()) return false;
    consumed += 4 + length;
    handle_frame(id, connection, fields);
  }
  connection.in.erase(0, consumed);
  return true;
}

void TcpStoreServer::State::handle_frame(uint64_t id, Connection& connection, const std::vector<std::string>& fields) {
  const std::string& op = fields[0];
  if (!connection.authenticated) {
    if (op == "HELLO" && fields.size() == 2 && same_token(fields[1], token)) {
      connection.authenticated = true;
      --unauthenticated;
      {
        std::lock_guard lock(count_mutex);
        ++authenticated_open;
      }
      count_changed.notify_all();
      reply(connection, {"OK"});
    } else {
      reply(connection, {"ERR", op == "HELLO" ? "wrong job token" : "present the job token first"});
      connection.close_after_flush = true;
    }
    return;
  }
  if (op == "SET" && fields.size() == 3) {
    data[fields[1]] = fields[2];
    reply(connection, {"OK"});
    on_key_set(fields[1]);
  } else if (op == "DEL" && fields.size() == 2) {
    data.erase(fields[1]);
    reply(connection, {"OK"});
  } else if (op == "WAIT" && fields.size() >= 2) {
    char* end = nullptr;
    const long long timeout_ms = std::strtoll(fields[1].c_str(), &end, 10);
    if (end == fields[1].c_str() || *end != '\0' || timeout_ms < 0) {
      reply(connection, {"ERR", "bad WAIT timeout"});
      return;
    }
    connection.wait_keys.assign(fields.begin() + 2, fields.end());
    connection.wait_missing.clear();
    for (const auto& key : connection.wait_keys)
      if (!data.count(key)) connection.wait_missing.insert(key);
    connection.waiting = true;
    connection.wait_deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    if (connection.wait_missing.empty()) {
      finish_wait(id, connection);
    } else {
      for (const auto& key : connection.wait_missing) waiters[key].push_back(id);
    }
  } else {
    reply(connection, {"ERR", "unknown or malformed request '" + op + "'"});
  }
}

void TcpStoreServer::State::on_key_set(const std::string& key) {
  const auto found = waiters.find(key);
  if (found == waiters.end()) return;
  std::vector<uint64_t> ids = std::move(found->second);
  waiters.erase(found);
  for (uint64_t id : ids) {
    const auto connection = connections.find(id);
    if (connection == connections.end() || !connection->second.waiting) continue;
    if (connection->second.wait_missing.erase(key) && connection->second.wait_missing.empty())
      finish_wait(id, connection->second);
  }
}

void TcpStoreServer::State::finish_wait(uint64_t id, Connection& connection) {
  // A key seen earlier may have been deleted since; then the wait goes on for it.
  for (const auto& key : connection.wait_keys) {
    if (!data.count(key) && connection.wait_missing.insert(key).second) waiters[key].push_back(id);
  }
  if (!connection.wait_missing.empty()) return;
  std::vector<std::string> fields{"OK"};
  for (const auto& key : connection.wait_keys) fields.push_back(data.at(key));
  connection.waiting = false;
  connection.wait_keys.clear();
  reply(connection, fields);
}

void TcpStoreServer::State::expire_wait(uint64_t id, Connection& connection) {
  std::vector<std::string> fields{"TIMEOUT"};
  for (size_t i = 0; i < connection.wait_keys.size(); ++i)
    if (connection.wait_missing.count(connection.wait_keys[i])) fields.push_back(std::to_string(i));
  forget_waiter(id, connection);
  reply(connection, fields);
}

void TcpStoreServer::State::forget_waiter(uint64_t id, Connection& connection) {
  for (const auto& key : connection.wait_missing) {
    const auto found = waiters.find(key);
    if (found == waiters.end()) continue;
    auto& ids = found->second;
    ids.erase(std::remove(ids.begin(), ids.end(), id), ids.end());
    if (ids.empty()) waiters.erase(found);
  }
  connection.waiting = false;
  connection.wait_keys.clear();
  connection.wait_missing.clear();
}

void TcpStoreServer::State::close_connection(uint64_t id) {
  const auto found = connections.find(id);
  if (found == connections.end()) return;
  if (found->second.waiting) forget_waiter(id, found->second);
  if (!found->second.authenticated) --unauthenticated;
  if (found->second.authenticated) {
    {
      std::lock_guard lock(count_mutex);
      --authenticated_open;
    }
    count_changed.notify_all();
  }
  connections.erase(found);  // closes the socket
}

TcpStoreServer::TcpStoreServer(std::string token, const std::string& bind_address, uint16_t port)
    : state_(std::make_unique<State>()), bind_address_(bind_address) {
  if (token.size() < kShortestToken) throw Error("rendezvous store: a job token of at least 16 characters is needed");
  state_->token = std::move(token);
  std::string error;
  AddrInfoList list = resolve(bind_address, port, true, error);
  if (!list) throw Error("rendezvous store cannot listen on " + bind_address + ": " + error);
  for (addrinfo* info = list.get(); info != nullptr && !state_->listener; info = info->ai_next) {
    UniqueFd fd(::socket(info->ai_family, info->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, info->ai_protocol));
    if (!fd) {
      error = "socket: " + errno_text(errno);
      continue;
    }
    // A fixed port (env launcher) must be reusable right after the previous job's TIME_WAIT.
    int one = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd.get(), info->ai_addr, info->ai_addrlen) != 0 || ::listen(fd.get(), SOMAXCONN) != 0) {
      error = errno_text(errno);
      continue;
    }
    sockaddr_storage bound{};
    socklen_t length = sizeof bound;
    getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &length);
    port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                              : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    state_->listener = std::move(fd);
  }
  if (!state_->listener)
    throw Error("rendezvous store cannot listen on " + StoreAddress{bind_address, port}.to_string() + ": " + error);
  state_->wake.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!state_->wake) throw Error("eventfd for the rendezvous store: " + errno_text(errno));
  thread_ = std::thread([this] { serve(); });
}

TcpStoreServer::~TcpStoreServer() {
  state_->stopping = true;
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t ignored = ::write(state_->wake.get(), &one, sizeof one);
  if (thread_.joinable()) thread_.join();
}

StoreAddress TcpStoreServer::local_address() const {
  // A wildcard listener accepts on every interface; loopback is the one certain to reach it.
  if (bind_address_.empty() || bind_address_ == "0.0.0.0") return {"127.0.0.1", port_};
  if (bind_address_ == "::") return {"::1", port_};
  return {bind_address_, port_};
}

bool TcpStoreServer::wait_for_clients_to_leave(Deadline deadline) {
  std::unique_lock lock(state_->count_mutex);
  return state_->count_changed.wait_until(
      lock, deadline.when, [&] { return state_->thread_done || state_->authenticated_open == 0; });
}

void TcpStoreServer::serve() {
  State& s = *state_;
  std::vector<pollfd> entries;
  std::vector<uint64_t> ids;
  try {
    while (!s.stopping) {
      entries.clear();
      ids.clear();
      entries.push_back({s.wake.get(), POLLIN, 0});
      const bool accepting = Clock::now() >= s.accept_paused_until;
      entries.push_back({s.listener.get(), static_cast<short>(accepting ? POLLIN : 0), 0});
      Clock::time_point next_deadline = accepting ? Clock::now() + std::chrono::hours(1) : s.accept_paused_until;
      for (auto& [id, connection] : s.connections) {
        // A request already buffered behind a reply that has gone out: handle it without waiting.
        if (State::ready_for_request(connection) && !connection.in.empty()) next_deadline = Clock::now();
        short events = State::ready_for_request(connection) ? POLLIN : 0;
        if (!connection.out.empty()) events |= POLLOUT;
        entries.push_back({connection.fd.get(), events, 0});
        ids.push_back(id);
        if (!connection.authenticated) next_deadline = std::min(next_deadline, connection.hello_deadline);
        if (connection.waiting) next_deadline = std::min(next_deadline, connection.wait_deadline);
      }
      const int ready = ::poll(entries.data(), entries.size(), milliseconds_until(next_deadline));
      if (ready < 0 && errno != EINTR) throw Error("poll: " + errno_text(errno));
      if (s.stopping) break;
      if (ready > 0 && (entries[1].revents & POLLIN)) s.accept_all();

      std::vector<uint64_t> to_close;
      for (size_t i = 0; i < ids.size(); ++i) {
        const short revents = ready > 0 ? entries[i + 2].revents : 0;
        auto found = s.connections.find(ids[i]);
        if (found == s.connections.end()) continue;
        State::Connection& connection = found->second;
        // Both directions gone (a half-close only ends reading, which recv reports as 0).
        if (revents & (POLLHUP | POLLERR)) {
          to_close.push_back(ids[i]);
          continue;
        }
        if (revents & POLLOUT) s.flush(connection);
        // Requests that arrived behind a reply the peer has now taken are parsed too.
        const bool buffered = State::ready_for_request(connection) && !connection.in.empty();
        if (((revents & POLLIN) || buffered) && !s.read_from(ids[i], connection)) to_close.push_back(ids[i]);
      }
      const auto now = Clock::now();
      for (auto& [id, connection] : s.connections) {
        if (!connection.authenticated && now >= connection.hello_deadline) to_close.push_back(id);
        if (connection.waiting && now >= connection.wait_deadline) s.expire_wait(id, connection);
        if (connection.close_after_flush && connection.out.empty()) to_close.push_back(id);
      }
      for (uint64_t id : to_close) s.close_connection(id);
    }
  } catch (const std::exception& error) {
    // Nothing can be thrown out of this thread; clients see their connections close and report it.
    std::fprintf(stderr, "cclab: rendezvous store stopped: %s\n", error.what());
  }
  for (auto it = s.connections.begin(); it != s.connections.end();) s.close_connection((it++)->first);
  {
    std::lock_guard lock(s.count_mutex);
    s.thread_done = true;
  }
  s.count_changed.notify_all();
}

}  // namespace cclab
