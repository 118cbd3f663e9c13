#include "cclab/comm.h"

#include <unistd.h>

#include <atomic>
#include <map>
#include <thread>

#include "cclab/error.h"
#include "transports/ucx/ucx_transport.h"

namespace cclab {
namespace {

std::string this_host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "unknown";
  return name;
}

}  // namespace

Comm::Comm(std::unique_ptr<Bootstrap> bootstrap, std::unique_ptr<Transport> transport, const CommOptions& options)
    : options_(options), bootstrap_(std::move(bootstrap)), transport_(std::move(transport)) {
  transport_->set_yield_when_idle(options.yield_when_idle);
  host_names_ = bootstrap_->allgather(this_host_name());
  topology_.node_of_rank.resize(host_names_.size());
  if (options.ranks_per_node > 0) {
    for (size_t r = 0; r < host_names_.size(); ++r) topology_.node_of_rank[r] = int(r) / options.ranks_per_node;
  } else {
    std::map<std::string, int> node_of_host;  // nodes numbered in order of their first rank
    for (size_t r = 0; r < host_names_.size(); ++r) {
      auto [it, added] = node_of_host.emplace(host_names_[r], int(node_of_host.size()));
      topology_.node_of_rank[r] = it->second;
    }
  }
}

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
  if (options.transport != "ucx")
    throw UsageError("unknown transport '" + options.transport + "' (this build has: ucx)");
  auto transport = std::make_unique<UcxTransport>(*bootstrap, options.timeout_s);
  return std::make_unique<Comm>(std::move(bootstrap), std::move(transport), options);
}

std::vector<std::string> available_transports() { return {"ucx"}; }

}  // namespace cclab
