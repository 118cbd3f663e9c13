#include "bootstrap/tcp_store.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "cclab/error.h"

namespace cclab {
namespace {

// Before a peer has shown the token it may only send a short HELLO; afterwards frames are bounded
// so that a corrupt length prefix cannot make either side allocate gigabytes.
constexpr uint32_t kMaxHelloFrame = 4096;
constexpr uint32_t kMaxFrame = 1u << 30;
// A connection that has not authenticated by then is dropped: it holds a slot and nothing else.
constexpr auto kHelloTimeout = std::chrono::seconds(10);
// The server answers a WAIT itself when its timeout passes; a client gives it this much longer
// before concluding the server is gone (a busy host can delay the reply a little).
constexpr auto kReplyGrace = std::chrono::seconds(10);

std::string errno_text(int error) { return std::strerror(error); }

int milliseconds_until(Clock::time_point when) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(when - Clock::now()).count();
  // Round up so that poll() never returns a hair before the deadline and spins.
  return static_cast<int>(std::clamp<long long>(left + 1, 0, 24 * 3600 * 1000));
}

std::string format_seconds(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", seconds);
  return text;
}

void put_u32(std::string& out, uint32_t value) {
  const unsigned char bytes[4] = {static_cast<unsigned char>(value >> 24), static_cast<unsigned char>(value >> 16),
                                  static_cast<unsigned char>(value >> 8), static_cast<unsigned char>(value)};
  out.append(reinterpret_cast<const char*>(bytes), 4);
}

uint32_t get_u32(const char* data) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(data);
  return (uint32_t{bytes[0]} << 24) | (uint32_t{bytes[1]} << 16) | (uint32_t{bytes[2]} << 8) | uint32_t{bytes[3]};
}

std::string encode_frame(const std::vector<std::string>& fields) {
  size_t payload = 0;
  for (const auto& field : fields) payload += 4 + field.size();
  if (payload > kMaxFrame) throw Error("store message of " + std::to_string(payload) + " bytes is too large");
  std::string frame;
  frame.reserve(4 + payload);
  put_u32(frame, static_cast<uint32_t>(payload));
  for (const auto& field : fields) {
    put_u32(frame, static_cast<uint32_t>(field.size()));
    frame += field;
  }
  return frame;
}

/// Splits a payload into fields; false if the lengths do not add up.
bool decode_fields(const char* data, size_t size, std::vector<std::string>& fields) {
  fields.clear();
  size_t at = 0;
  while (at < size) {
    if (size - at < 4) return false;
    const uint32_t length = get_u32(data + at);
    at += 4;
    if (length > size - at) return false;
    fields.emplace_back(data + at, length);
    at += length;
  }
  return true;
}

/// Compares without an early exit, so response timing does not reveal how much of a guess was right.
/// (The length is no secret: tokens are always 32 hex digits.)
bool same_token(const std::string& offered, const std::string& expected) {
  if (offered.size() != expected.size()) return false;
  unsigned char difference = 0;
  for (size_t i = 0; i < offered.size(); ++i) difference |= static_cast<unsigned char>(offered[i] ^ expected[i]);
  return difference == 0;
}

void set_nodelay(int fd) {
  // Store messages are small request/reply pairs: Nagle's algorithm would only add latency.
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

struct AddrInfoDeleter {
  void operator()(addrinfo* info) const { freeaddrinfo(info); }
};
using AddrInfoList = std::unique_ptr<addrinfo, AddrInfoDeleter>;

/// getaddrinfo as a list that frees itself; on failure, empty with `error` set.
AddrInfoList resolve(const std::string& host, uint16_t port, bool passive, std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : AI_ADDRCONFIG;
  addrinfo* list = nullptr;
  const std::string service = std::to_string(port);
  const int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &list);
  if (rc != 0) {
    error = "cannot resolve '" + host + "': " + gai_strerror(rc);
    return nullptr;
  }
  return AddrInfoList(list);
}

/// Writes all of `data`, waiting for the socket with poll() until `deadline`.
void send_all(int fd, const std::string& data, Deadline deadline, const std::string& peer) {
  size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
      throw Error("lost the connection to the rendezvous store at " + peer + ": " + errno_text(errno));
    pollfd entry{fd, POLLOUT, 0};
    const int ready = ::poll(&entry, 1, milliseconds_until(deadline.when));
    if (ready < 0 && errno != EINTR) throw Error("poll on the rendezvous store connection failed: " + errno_text(errno));
    if (ready == 0 && deadline.passed())
      throw TimeoutError("the rendezvous store at " + peer + " stopped accepting data");
  }
}

/// Reads exactly `size` bytes into `out`, waiting with poll() until `deadline`.
void recv_exact(int fd, char* out, size_t size, Deadline deadline, const std::string& peer) {
  size_t received = 0;
  while (received < size) {
    const ssize_t n = ::recv(fd, out + received, size - received, 0);
    if (n > 0) {
      received += static_cast<size_t>(n);
      continue;
    }
    if (n == 0)
      throw Error("the rendezvous store at " + peer +
                  " closed the connection (the process hosting it exited or refused this peer)");
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      throw Error("lost the connection to the rendezvous store at " + peer + ": " + errno_text(errno));
    pollfd entry{fd, POLLIN, 0};
    const int ready = ::poll(&entry, 1, milliseconds_until(deadline.when));
    if (ready < 0 && errno != EINTR) throw Error("poll on the rendezvous store connection failed: " + errno_text(errno));
    if (ready == 0 && deadline.passed())
      throw TimeoutError("the rendezvous store at " + peer + " did not answer in time");
  }
}

std::vector<std::string> recv_frame(int fd, Deadline deadline, const std::string& peer) {
  char header[4];
  recv_exact(fd, header, 4, deadline, peer);
  const uint32_t length = get_u32(header);
  if (length > kMaxFrame) throw Error("the rendezvous store at " + peer + " sent a corrupt message");
  std::string payload(length, '\0');
  recv_exact(fd, payload.data(), length, deadline, peer);
  std::vector<std::string> fields;
  if (!decode_fields(payload.data(), payload.size(), fields) || fields.empty())
    throw Error("the rendezvous store at " + peer + " sent a corrupt message");
  return fields;
}

/// One non-blocking connection attempt bounded by `deadline`; returns the connected socket or an
/// empty one with `error` set.
UniqueFd try_connect(const StoreAddress& address, Deadline deadline, std::string& error) {
  AddrInfoList list = resolve(address.host, address.port, false, error);
  for (addrinfo* info = list.get(); info != nullptr; info = info->ai_next) {
    UniqueFd fd(::socket(info->ai_family, info->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, info->ai_protocol));
    if (!fd) {
      error = "socket: " + errno_text(errno);
      continue;
    }
    if (::connect(fd.get(), info->ai_addr, info->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        error = errno_text(errno);
        continue;
      }
      pollfd entry{fd.get(), POLLOUT, 0};
      int ready;
      do {
        ready = ::poll(&entry, 1, milliseconds_until(deadline.when));
      } while (ready < 0 && errno == EINTR);
      if (ready <= 0) {
        error = ready == 0 ? "connection attempt timed out" : "poll: " + errno_text(errno);
        continue;
      }
      int so_error = 0;
      socklen_t length = sizeof so_error;
      getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &so_error, &length);
      if (so_error != 0) {
        error = errno_text(so_error);
        continue;
      }
    }
    set_nodelay(fd.get());
    return fd;
  }
  return UniqueFd();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Small pieces

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

std::string make_job_token() {
  UniqueFd random(::open("/dev/urandom", O_RDONLY | O_CLOEXEC));
  if (!random) throw Error("cannot open /dev/urandom for the job token: " + errno_text(errno));
  unsigned char bytes[16];
  size_t got = 0;
  while (got < sizeof bytes) {
    const ssize_t n = ::read(random.get(), bytes + got, sizeof bytes - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Error("cannot read /dev/urandom for the job token: " + errno_text(errno));
    got += static_cast<size_t>(n);
  }
  static const char kHex[] = "0123456789abcdef";
  std::string token;
  for (unsigned char byte : bytes) {
    token += kHex[byte >> 4];
    token += kHex[byte & 15];
  }
  return token;
}

std::string StoreAddress::to_string() const {
  const bool ipv6 = host.find(':') != std::string::npos;
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

StoreAddress parse_store_address(const std::string& text, const std::string& what) {
  const auto malformed = [&] {
    return UsageError(what + " must be host:port (or [ipv6]:port), got '" + text + "'");
  };
  StoreAddress address;
  std::string port_text;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') throw malformed();
    address.host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string::npos || text.find(':') != colon) throw malformed();
    address.host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  if (address.host.empty() || port_text.empty() || port_text.size() > 5 ||
      !std::all_of(port_text.begin(), port_text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    throw malformed();
  const unsigned long port = std::stoul(port_text);
  if (port > 65535) throw malformed();
  address.port = static_cast<uint16_t>(port);
  return address;
}

// ---------------------------------------------------------------------------------------------
// Server

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

  std::map<uint64_t, Connection> connections;
  uint64_t next_connection_id = 1;
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
    Connection connection;
    connection.fd.reset(fd);
    connection.hello_deadline = Clock::now() + kHelloTimeout;
    connections.emplace(next_connection_id++, std::move(connection));
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
  char buffer[64 * 1024];
  for (;;) {
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
  while (connection.in.size() - consumed >= 4) {
    const uint32_t length = get_u32(connection.in.data() + consumed);
    if (length > (connection.authenticated ? kMaxFrame : kMaxHelloFrame)) return false;
    if (connection.in.size() - consumed - 4 < length) break;
    // A request while a WAIT is pending breaks the one-request-in-flight rule: drop the peer.
    if (connection.waiting || connection.close_after_flush) return false;
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
        short events = POLLIN;
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
      for (size_t i = 0; ready > 0 && i < ids.size(); ++i) {
        const short revents = entries[i + 2].revents;
        if (revents == 0) continue;
        auto found = s.connections.find(ids[i]);
        if (found == s.connections.end()) continue;
        State::Connection& connection = found->second;
        if (revents & POLLOUT) s.flush(connection);
        // POLLHUP/POLLERR also go through recv, which reports the end or the error.
        if ((revents & (POLLIN | POLLHUP | POLLERR)) && !s.read_from(ids[i], connection)) to_close.push_back(ids[i]);
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

// ---------------------------------------------------------------------------------------------
// Client

TcpStoreClient::TcpStoreClient(StoreAddress address, const std::string& token, Deadline connect_deadline)
    : address_(std::move(address)) {
  // The server may not be listening yet (rank 0 starting late under the env launcher): retry with
  // a growing pause until the deadline.
  std::string error = "no attempt made";
  auto pause = std::chrono::milliseconds(20);
  for (;;) {
    socket_ = try_connect(address_, connect_deadline, error);
    if (socket_ || connect_deadline.passed()) break;
    const auto wake = std::min(Clock::now() + pause, connect_deadline.when);
    std::this_thread::sleep_until(wake);
    pause = std::min(pause * 2, std::chrono::milliseconds(500));
  }
  if (!socket_)
    throw TimeoutError("could not connect to the rendezvous store at " + address_.to_string() + ": " + error);
  const auto reply = request({"HELLO", token}, Deadline{Clock::now() + kReplyGrace});
  if (reply[0] != "OK") {
    broken_ = true;
    throw Error("the rendezvous store at " + address_.to_string() + " refused this process: " +
                (reply.size() > 1 ? reply[1] : reply[0]) + " (CCLAB_TOKEN must be the job's token)");
  }
}

std::vector<std::string> TcpStoreClient::request(const std::vector<std::string>& fields, Deadline reply_deadline) {
  if (broken_)
    throw Error("the connection to the rendezvous store at " + address_.to_string() + " failed earlier");
  try {
    send_all(socket_.get(), encode_frame(fields), reply_deadline, address_.to_string());
    auto reply = recv_frame(socket_.get(), reply_deadline, address_.to_string());
    if (reply[0] == "ERR" && fields[0] != "HELLO")
      throw Error("the rendezvous store at " + address_.to_string() + " rejected " + fields[0] + ": " +
                  (reply.size() > 1 ? reply[1] : std::string("no reason given")));
    return reply;
  } catch (...) {
    broken_ = true;
    throw;
  }
}

void TcpStoreClient::set(const std::string& key, const std::string& value) {
  std::lock_guard lock(mutex_);
  request({"SET", key, value}, Deadline{Clock::now() + kReplyGrace});
}

void TcpStoreClient::erase(const std::string& key) {
  std::lock_guard lock(mutex_);
  request({"DEL", key}, Deadline{Clock::now() + kReplyGrace});
}

TcpStoreClient::WaitResult TcpStoreClient::wait_all(const std::vector<std::string>& keys, Deadline deadline) {
  std::lock_guard lock(mutex_);
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline.when - Clock::now());
  std::vector<std::string> fields{"WAIT", std::to_string(std::max<long long>(0, left.count()))};
  fields.insert(fields.end(), keys.begin(), keys.end());
  const auto reply = request(fields, Deadline{std::max(deadline.when, Clock::now()) + kReplyGrace});
  WaitResult result;
  if (reply[0] == "OK" && reply.size() == keys.size() + 1) {
    result.values.assign(reply.begin() + 1, reply.end());
  } else if (reply[0] == "TIMEOUT") {
    for (size_t i = 1; i < reply.size(); ++i) result.missing.push_back(std::stoul(reply[i]));
  } else {
    broken_ = true;
    throw Error("the rendezvous store at " + address_.to_string() + " sent an unexpected reply to WAIT");
  }
  return result;
}

std::string TcpStoreClient::get(const std::string& key, Deadline deadline) {
  const auto start = Clock::now();
  auto result = wait_all({key}, deadline);
  if (!result.missing.empty()) {
    const double waited = std::chrono::duration<double>(Clock::now() - start).count();
    throw TimeoutError("key '" + key + "' did not appear in the rendezvous store within " +
                       format_seconds(std::round(waited * 10) / 10) + " s");
  }
  return std::move(result.values[0]);
}

// ---------------------------------------------------------------------------------------------
// Bootstrap

namespace {

/// "rank 3", "ranks 2, 3", "ranks 0-5, 9": runs of three or more collapse into a range.
std::string describe_ranks(const std::vector<int>& ranks) {
  std::string text = ranks.size() == 1 ? "rank " : "ranks ";
  for (size_t i = 0; i < ranks.size();) {
    size_t j = i;
    while (j + 1 < ranks.size() && ranks[j + 1] == ranks[j] + 1) ++j;
    if (i > 0) text += ", ";
    if (j - i >= 2) {
      text += std::to_string(ranks[i]) + "-" + std::to_string(ranks[j]);
      i = j + 1;
    } else {
      text += std::to_string(ranks[i]);
      ++i;
    }
  }
  return text;
}

std::string round_prefix(uint64_t round) { return "ag/" + std::to_string(round) + "/"; }

}  // namespace

TcpStoreBootstrap::TcpStoreBootstrap(std::unique_ptr<TcpStoreClient> client, int rank, int size, std::string launcher,
                                     double timeout_s, std::unique_ptr<TcpStoreServer> hosted_server)
    : hosted_server_(std::move(hosted_server)),
      client_(std::move(client)),
      rank_(rank),
      size_(size),
      launcher_(std::move(launcher)),
      timeout_s_(timeout_s) {
  if (size < 1 || rank < 0 || rank >= size)
    throw UsageError("rank " + std::to_string(rank) + " is outside a world of " + std::to_string(size));
}

TcpStoreBootstrap::~TcpStoreBootstrap() {
  client_.reset();
  // Rank 0 hosting the store may finish first while the others still collect the last round's reply.
  // Keep serving until every connected rank has hung up (they do when their bootstrap goes, or
  // their process ends), but never longer than one timeout. After a successful allgather every rank
  // has connected, so nobody is left out by not waiting for ranks that never connected.
  if (hosted_server_) hosted_server_->wait_for_clients_to_leave(Deadline::after(timeout_s_));
}

std::vector<std::string> TcpStoreBootstrap::allgather(const std::string& mine) {
  return allgather(mine, Deadline::after(timeout_s_), timeout_s_);
}

std::vector<std::string> TcpStoreBootstrap::allgather(const std::string& mine, Deadline deadline, double timeout_s) {
  const uint64_t round = round_++;
  const std::string prefix = round_prefix(round);
  client_->set(prefix + std::to_string(rank_), mine);
  std::vector<std::string> keys;
  keys.reserve(size_);
  for (int r = 0; r < size_; ++r) keys.push_back(prefix + std::to_string(r));
  auto result = client_->wait_all(keys, deadline);
  if (!result.missing.empty()) {
    std::vector<int> missing(result.missing.begin(), result.missing.end());
    std::sort(missing.begin(), missing.end());
    const std::string who = describe_ranks(missing);
    if (round == 0)
      throw TimeoutError("rendezvous timed out after " + format_seconds(timeout_s) + " s: " + who + " never arrived");
    throw TimeoutError("bootstrap allgather (round " + std::to_string(round) + ") timed out after " +
                       format_seconds(timeout_s) + " s: " + who + " did not arrive");
  }
  // Every rank has now written its key for this round, which it does only after reading all of the
  // previous round, so nobody needs our previous key any more: delete it to keep the store small.
  if (round > 0) client_->erase(round_prefix(round - 1) + std::to_string(rank_));
  return std::move(result.values);
}

}  // namespace cclab
