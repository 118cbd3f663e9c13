// Socket plumbing of the rendezvous store: resolving an address, connecting, and sending or
// receiving whole messages, every wait bounded by a Deadline so that no rank hangs on a store that
// went away. Sockets are non-blocking and waited on with poll(), which is what lets a call keep to
// its deadline; errors name the rendezvous store, the only peer these sockets talk to.
#pragma once

#include <netdb.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "bootstrap/store_address.h"
#include "bootstrap/unique_fd.h"
#include "cclab/deadline.h"

namespace cclab {

std::string errno_text(int error);

/// What poll() should wait for `when`: never negative, never a hair early.
int milliseconds_until(Clock::time_point when);

void set_nodelay(int fd);

struct AddrInfoDeleter {
  void operator()(addrinfo* info) const { freeaddrinfo(info); }
};
using AddrInfoList = std::unique_ptr<addrinfo, AddrInfoDeleter>;

/// getaddrinfo as a list that frees itself; on failure, empty with `error` set.
AddrInfoList resolve(const std::string& host, uint16_t port, bool passive, std::string& error);

/// Writes all of `data`, waiting for the socket with poll() until `deadline`.
void send_all(int fd, const std::string& data, Deadline deadline, const std::string& peer);

/// Reads exactly `size` bytes into `out`, waiting with poll() until `deadline`.
void recv_exact(int fd, char* out, size_t size, Deadline deadline, const std::string& peer);

/// One non-blocking connection attempt bounded by `deadline`; returns the connected socket or an
/// empty one with `error` set.
UniqueFd try_connect(const StoreAddress& address, Deadline deadline, std::string& error);

}  // namespace cclab
