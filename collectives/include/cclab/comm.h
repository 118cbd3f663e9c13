// A communicator: who we are (bootstrap), how we talk (transport) and where ranks live (topology).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cclab/algorithm.h"
#include "cclab/bootstrap.h"
#include "cclab/peer_memory.h"
#include "cclab/transport.h"

namespace cclab {

struct CommOptions {
  std::string transport = "ucx";  // "ucx" or "mpi" (host memory); loopback only exists for threads in tests
  std::string inter_transport;    // between nodes, when not the same as `transport`; also ucx:tcp etc.
                                  // (check_inter_transport): a UCX context of its own, with those transports
  double timeout_s = 60;
  int ranks_per_node = 0;  // 0: group ranks by host name
  bool yield_when_idle = false;
};

class Comm {
 public:
  /// Groups the ranks of `bootstrap` into nodes, creates the named transport(s) and joins;
  /// collective over all ranks.
  static std::unique_ptr<Comm> create(std::unique_ptr<Bootstrap> bootstrap, const CommOptions& options);
  ~Comm();

  int rank() const { return bootstrap_->rank(); }
  int size() const { return bootstrap_->size(); }
  Bootstrap& bootstrap() { return *bootstrap_; }
  Transport& transport() { return *transport_; }
  const Topology& topology() const { return topology_; }
  const std::vector<std::string>& host_names() const { return host_names_; }
  double timeout_s() const { return options_.timeout_s; }

  /// Allgather and barrier over the bootstrap (control traffic outside timed regions) that keep
  /// the transport progressing while they wait: a peer may still need this rank's transport to
  /// finish its last transfers (e.g. the acknowledgement of a rendezvous send).
  std::vector<std::string> allgather(const std::string& mine);
  void barrier() { allgather(std::string()); }

  /// A new number for the next collective call; the same on every rank when calls are in order.
  uint64_t next_sequence() { return sequence_++; }

  /// The memory the ranks of this rank's node can address and read in place (cclab/peer_memory.h);
  /// null when it could not be mapped, and why_no_peer_memory() says why.
  PeerMemory* peer_memory() { return peer_memory_.get(); }
  const std::string& why_no_peer_memory() const { return why_no_peer_memory_; }

 private:
  Comm(CommOptions options, std::unique_ptr<Bootstrap> bootstrap, Topology topology,
       std::vector<std::string> host_names);
  CommOptions options_;
  std::unique_ptr<Bootstrap> bootstrap_;
  std::unique_ptr<Transport> transport_;
  Topology topology_;
  std::vector<std::string> host_names_;
  uint64_t sequence_ = 0;
  std::unique_ptr<PeerMemory> peer_memory_;
  std::string why_no_peer_memory_;
};

/// Names of the transports this build can create for host memory ("ucx", "mpi").
std::vector<std::string> available_transports();

/// UsageError unless `spec` is a transport between nodes this build can create: ucx, mpi,
/// ucx:auto (a UCX context of its own, UCX's choice), or ucx:T with T one or more of UCX's network
/// transports (tcp, rc, ud, dc, ...; comma-separated), forced for the traffic between nodes only.
void check_inter_transport(const std::string& spec);

}  // namespace cclab
