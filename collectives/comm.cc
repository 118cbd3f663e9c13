#include "cclab/comm.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <thread>

#include "bootstrap/job_network.h"
#include "cclab/error.h"
#include "cclab/node_shared_memory.h"
#include "transports/mpi/mpi_transport.h"
#include "transports/node_split/node_split_transport.h"
#include "transports/shared_memory/mailbox_transport.h"
#include "transports/ucx/ucx_transport.h"

namespace cclab {
namespace {

std::string this_host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "unknown";
  return name;
}

Topology topology_from_hosts(const std::vector<std::string>& host_names, int ranks_per_node) {
  Topology topology;
  topology.node_of_rank.resize(host_names.size());
  if (ranks_per_node > 0) {
    for (size_t r = 0; r < host_names.size(); ++r) topology.node_of_rank[r] = int(r) / ranks_per_node;
    return topology;
  }
  std::map<std::string, int> node_of_host;  // nodes numbered in order of their first rank
  for (size_t r = 0; r < host_names.size(); ++r)
    topology.node_of_rank[r] = node_of_host.emplace(host_names[r], int(node_of_host.size())).first->second;
  return topology;
}

// CCLAB_UCX_MAILBOXES=off sends small messages within a node through UCX too (to compare).
bool mailboxes_wanted() {
  const char* value = std::getenv("CCLAB_UCX_MAILBOXES");
  if (!value || !*value || std::string(value) == "on") return true;
  if (std::string(value) == "off") return false;
  throw UsageError("CCLAB_UCX_MAILBOXES must be 'on' or 'off', not '" + std::string(value) + "'");
}

// UCX listens on every TCP device it opens: keep it to the one the job needs.
UcxOptions ucx_options(Bootstrap& bootstrap, const std::vector<std::string>& host_names) {
  UcxOptions options = UcxOptions::from_env();
  std::string why_not;
  options.net_devices = job_network_interface(host_names, bootstrap.rank(), &why_not);
  if (options.net_devices.empty())
    std::fprintf(stderr, "cclab: rank %d: UCX may listen on every interface (%s); set UCX_NET_DEVICES\n",
                 bootstrap.rank(), why_not.c_str());
  return options;
}

// UCX's names of the network transports a level may be forced onto ("ucx:tcp"); shared memory
// cannot join two hosts, and "auto" leaves the choice to UCX (UCX_TLS, or all it finds).
const std::vector<std::string>& ucx_network_transports() {
  static const std::vector<std::string> names = {"tcp", "rc", "rc_v", "rc_x", "rc_verbs", "rc_mlx5", "ud", "ud_v",
                                                 "ud_x", "ud_verbs", "ud_mlx5", "dc", "dc_x", "dc_mlx5", "ib", "ugni",
                                                 "ugni_rdma", "ugni_udt", "ugni_smsg"};
  return names;
}

// "ucx:tcp" -> "tcp"; "ucx:rc,tcp" -> "rc,tcp"; "ucx:auto" -> "" (UCX chooses).
std::string ucx_transports_of(const std::string& spec) { return spec == "ucx:auto" ? "" : spec.substr(4); }

// `connect_to`: the ranks to reach through this transport (empty: every other rank).
std::unique_ptr<Transport> make_transport(const std::string& name, Bootstrap& bootstrap, double timeout_s,
                                          const std::vector<std::string>& host_names,
                                          std::vector<bool> connect_to = {}) {
  if (name == "ucx" || name.rfind("ucx:", 0) == 0) {
    UcxOptions options = ucx_options(bootstrap, host_names);
    if (name != "ucx") {
      options.transports = ucx_transports_of(name);
      // NET_DEVICES names an IP interface: it would hide an InfiniBand port from rc, ud or dc.
      if (!options.transports.empty() && options.transports.find("tcp") == std::string::npos)
        options.net_devices.clear();
    }
    options.connect_to = std::move(connect_to);
    return std::make_unique<UcxTransport>(bootstrap, timeout_s, options);
  }
  if (name == "mpi") return std::make_unique<MpiTransport>(host_names);
  throw UsageError("unknown transport '" + name + "' (this build has: ucx, mpi)");
}

}  // namespace

Comm::Comm(CommOptions options, std::unique_ptr<Bootstrap> bootstrap, Topology topology,
           std::vector<std::string> host_names)
    : options_(std::move(options)),
      bootstrap_(std::move(bootstrap)),
      topology_(std::move(topology)),
      host_names_(std::move(host_names)) {}

Comm::~Comm() = default;

std::vector<std::string> Comm::allgather(const std::string& mine) {
  std::atomic<bool> done{false};
  std::vector<std::string> result;
  std::exception_ptr error;
  std::thread control([&] {
    try {
      result = bootstrap_->allgather(mine);
    } catch (...) {
      error = std::current_exception();
    }
    done.store(true, std::memory_order_release);
  });
  Backoff backoff(/*always_yield=*/true);
  while (!done.load(std::memory_order_acquire))
    if (!transport_->progress()) backoff.idle();
  control.join();
  if (error) std::rethrow_exception(error);
  return result;
}

std::unique_ptr<Comm> Comm::create(std::unique_ptr<Bootstrap> bootstrap, const CommOptions& options) {
  std::vector<std::string> host_names = bootstrap->allgather(this_host_name());
  Topology topology = topology_from_hosts(host_names, options.ranks_per_node);
  std::unique_ptr<Comm> comm(new Comm(options, std::move(bootstrap), topology, std::move(host_names)));
  comm->transport_ = make_transport(options.transport, *comm->bootstrap_, options.timeout_s, comm->host_names_);
  if (!options.inter_transport.empty() && options.inter_transport != options.transport) {
    std::vector<bool> other_nodes(topology.node_of_rank.size());
    for (size_t r = 0; r < other_nodes.size(); ++r)
      other_nodes[r] = topology.node_of_rank[r] != topology.node_of_rank[size_t(comm->rank())];
    auto inter = make_transport(options.inter_transport, *comm->bootstrap_, options.timeout_s, comm->host_names_,
                                std::move(other_nodes));
    comm->transport_ = std::make_unique<NodeSplitTransport>(std::move(comm->transport_), std::move(inter),
                                                            topology.node_of_rank);
  } else if (options.transport == "ucx" && comm->size() > 1 && mailboxes_wanted()) {
    // A one-node job sends its small messages through mailboxes in node-shared memory
    // (transports/shared_memory/mailbox_transport.h); across nodes UCX carries everything.
    if (auto memory = NodeSharedMemory::create(*comm, MailboxTransport::segment_bytes(comm->size()), nullptr))
      comm->transport_ = std::make_unique<MailboxTransport>(std::move(comm->transport_), std::move(memory));
  }
  comm->transport_->set_yield_when_idle(options.yield_when_idle);
  comm->peer_memory_ = PeerMemory::create(*comm, &comm->why_no_peer_memory_);
  return comm;
}

std::vector<std::string> available_transports() { return {"ucx", "mpi"}; }

void check_inter_transport(const std::string& spec) {
  if (spec.empty() || spec == "ucx" || spec == "mpi" || spec == "ucx:auto") return;
  std::string usage =
      "--inter-transport takes ucx, mpi, ucx:auto, or ucx: and UCX network transports joined by commas (tcp, rc, "
      "ud, dc, ib, rc_mlx5, ...; ucx_info -d lists this host's), not '";
  usage += spec;
  usage += "'";
  if (spec.rfind("ucx:", 0) != 0 || spec.size() == 4) throw UsageError(usage);
  const std::string list = spec.substr(4) + ',';
  for (size_t at = 0; at < list.size();) {
    const size_t comma = list.find(',', at);
    const std::string name = list.substr(at, comma - at);
    const auto& names = ucx_network_transports();
    if (std::find(names.begin(), names.end(), name) == names.end()) throw UsageError(usage);
    at = comma + 1;
  }
}

}  // namespace cclab
