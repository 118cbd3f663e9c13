#include "bootstrap/job_network.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "bootstrap/unique_fd.h"

namespace cclab {
namespace {

bool same_address(const sockaddr* a, const sockaddr* b) {
  if (a == nullptr || b == nullptr || a->sa_family != b->sa_family) return false;
  if (a->sa_family == AF_INET)
    return reinterpret_cast<const sockaddr_in*>(a)->sin_addr.s_addr ==
           reinterpret_cast<const sockaddr_in*>(b)->sin_addr.s_addr;
  if (a->sa_family == AF_INET6)
    return std::memcmp(&reinterpret_cast<const sockaddr_in6*>(a)->sin6_addr,
                       &reinterpret_cast<const sockaddr_in6*>(b)->sin6_addr, sizeof(in6_addr)) == 0;
  return false;
}

/// The local address the kernel would send from towards `remote` (a UDP connect sends nothing).
bool source_address_towards(const sockaddr* remote, socklen_t length, sockaddr_storage& source) {
  UniqueFd probe(::socket(remote->sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (probe.get() < 0 || ::connect(probe.get(), remote, length) != 0) return false;
  socklen_t source_length = sizeof source;
  return ::getsockname(probe.get(), reinterpret_cast<sockaddr*>(&source), &source_length) == 0;
}

std::string interface_holding(const sockaddr* address) {
  ifaddrs* raw = nullptr;
  if (::getifaddrs(&raw) != 0) return {};
  std::unique_ptr<ifaddrs, decltype(&::freeifaddrs)> interfaces(raw, &::freeifaddrs);
  for (const ifaddrs* entry = raw; entry != nullptr; entry = entry->ifa_next)
    if (same_address(entry->ifa_addr, address)) return entry->ifa_name;
  return {};
}

}  // namespace

bool ranks_share_one_host(const std::vector<std::string>& host_names) {
  return std::all_of(host_names.begin(), host_names.end(),
                     [&](const std::string& name) { return name == host_names.front(); });
}

std::string interface_towards(const std::string& host, std::string* why_not) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* raw = nullptr;
  if (const int rc = ::getaddrinfo(host.c_str(), "9", &hints, &raw); rc != 0) {
    if (why_not) *why_not = "cannot resolve host " + host + ": " + gai_strerror(rc);
    return {};
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(raw, &::freeaddrinfo);
  // IPv4 first: the address families UCX and Open MPI prefer by default.
  for (const int family : {AF_INET, AF_INET6}) {
    for (const addrinfo* entry = raw; entry != nullptr; entry = entry->ai_next) {
      if (entry->ai_family != family) continue;
      sockaddr_storage source{};
      if (!source_address_towards(entry->ai_addr, entry->ai_addrlen, source)) continue;
      std::string name = interface_holding(reinterpret_cast<const sockaddr*>(&source));
      if (!name.empty()) return name;
    }
  }
  if (why_not) *why_not = "no route from this host's interfaces to " + host;
  return {};
}

std::string job_network_interface(const std::vector<std::string>& host_names, int rank, std::string* why_not) {
  if (ranks_share_one_host(host_names)) return "lo";
  const std::string& mine = host_names.at(size_t(rank));
  // Rank 0's host when it is another one (the store's host in an env launch), else the first other.
  for (const std::string& other : host_names)
    if (other != mine) return interface_towards(other, why_not);
  return "lo";
}

}  // namespace cclab
