// Where a job's ranks may listen (docs/design.md, "Listeners"): a job whose ranks all run on one
// host needs no network at all, so its transports keep to loopback and shared memory; a job that
// spans hosts listens only on the interface through which this host reaches the others.
#pragma once

#include <string>
#include <vector>

namespace cclab {

/// True when every rank runs on this host (`host_names`: every rank's host name, by rank).
bool ranks_share_one_host(const std::vector<std::string>& host_names);

/// The network interface ("lo", "eth0") a rank should listen on: "lo" when the ranks share one host,
/// else the interface the kernel routes through towards the first rank on another host. Empty, with
/// the reason in `why_not`, when that host's name does not resolve or no interface holds the route's
/// source address.
std::string job_network_interface(const std::vector<std::string>& host_names, int rank, std::string* why_not);

/// The interface whose address the kernel picks as source for packets to `host` (any of its
/// addresses, IPv4 first); empty with the reason in `why_not` when there is none.
std::string interface_towards(const std::string& host, std::string* why_not);

}  // namespace cclab
