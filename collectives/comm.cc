#include "cclab/comm.h"

#include <unistd.h>

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

std::unique_ptr<Transport> make_transport(const std::string& name, Bootstrap& bootstrap, double timeout_s,
                                          const std::vector<std::string>& host_names) {
  if (name == "ucx") return std::make_unique<UcxTransport>(bootstrap, timeout_s, ucx_options(bootstrap, host_names));
  if (name == "mpi") return std::make_unique<MpiTransport>();
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
    auto inter = make_transport(options.inter_transport, *comm->bootstrap_, options.timeout_s, comm->host_names_);
    comm->transport_ = std::make_unique<NodeSplitTransport>(std::move(comm->transport_), std::move(inter),
                                                            topology.node_of_rank);
  } else if (options.transport == "ucx" && comm->size() > 1 && mailboxes_wanted()) {
    // A one-node job sends its small messages through mailboxes in node-shared memory
    // (transports/shared_memory/mailbox_transport.h); across nodes UCX carries everything.
    if (auto memory = NodeSharedMemory::create(*comm, MailboxTransport::segment_bytes(comm->size()), nullptr))
      comm->transport_ = std::make_unique<MailboxTransport>(std::move(comm->transport_), std::move(memory));
  }
  comm->transport_->set_yield_when_idle(options.yield_when_idle);
  return comm;
}

std::vector<std::string> available_transports() { return {"ucx", "mpi"}; }

}  // namespace cclab
