#include "bootstrap/socket_io.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "cclab/error.h"

namespace cclab {

std::string errno_text(int error) { return std::strerror(error); }

int milliseconds_until(Clock::time_point when) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(when - Clock::now()).count();
  // Round up so that poll() never returns a hair before the deadline and spins.
  return static_cast<int>(std::clamp<long long>(left + 1, 0, 24 * 3600 * 1000));
}

void set_nodelay(int fd) {
  // Store messages are small request/reply pairs: Nagle's algorithm would only add latency.
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

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
    if (ready < 0 && errno != EINTR)
      throw Error("poll on the rendezvous store connection failed: " + errno_text(errno));
    if (ready == 0 && deadline.passed())
      throw TimeoutError("the rendezvous store at " + peer + " stopped accepting data");
  }
}

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
    if (ready < 0 && errno != EINTR)
      throw Error("poll on the rendezvous store connection failed: " + errno_text(errno));
    if (ready == 0 && deadline.passed())
      throw TimeoutError("the rendezvous store at " + peer + " did not answer in time");
  }
}

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

}  // namespace cclab
