// UCX transport: UCP tag API over host memory (DESIGN 3.2). One UCP context and one single-threaded
// worker per transport, and an endpoint to every other rank; construction is collective. Endpoints
// use error handling mode "none" by default, because UCX 1.13 drops its shared-memory transports in
// mode "peer" (see UcxOptions).
//
// Progress: a request completes only while its own rank calls progress() (Transport::wait does).
// Sends above UCX's rendezvous threshold (UCX_RNDV_THRESH) complete only after the receiver has
// posted the matching receive and progressed, so post receives early: two ranks that each wait on
// a large send before posting their receive deadlock until the deadline.
//
// Teardown: shutdown() is collective, for healthy runs only; on error paths just destroy the
// transport, whose destructor cleans up locally with bounded waits and never throws. UCX 1.13
// cannot cancel a send, nor a receive already in flight: keep an abandoned request's buffer alive
// until the transport is destroyed.
//
// One transport per thread. Wiring, teardown and requests in detail: docs/ucx-transport.md.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cclab/bootstrap.h"
#include "cclab/transport.h"

namespace cclab {

struct UcxOptions {
  /// true: endpoints use UCP_ERR_HANDLING_MODE_PEER; a failed peer is reported at once (waits on
  /// it throw cclab::Error naming it) and endpoints can be force-closed. But UCX 1.13's shared
  /// memory transports (posix, sysv, cma) do not support peer failure handling, so within a node
  /// UCX then falls back to TCP over loopback (several times slower for large messages).
  /// false: UCP_ERR_HANDLING_MODE_NONE; shared memory + CMA within a node; a dead peer is only
  /// noticed when a wait's deadline passes (TimeoutError naming the peer).
  /// Every rank must use the same setting (checked at construction).
  bool peer_error_handling = false;

  /// The network devices UCX may open (its NET_DEVICES, e.g. "lo" or "eth0"), so that a rank listens
  /// only where the job needs (bootstrap/job_network.h); empty: every device. UCX_NET_DEVICES, when
  /// set, wins.
  std::string net_devices;

  /// The UCX transports this context may use (its TLS, e.g. "tcp" or "rc"), so that one level of a
  /// job can be forced onto a network while the other keeps UCX's choice (--inter-transport
  /// ucx:tcp); it wins over UCX_TLS. Empty: UCX_TLS, or UCX's own choice.
  std::string transports;

  /// Per rank: whether to create an endpoint to it (the transport between nodes needs none to the
  /// ranks of its own node). Empty: to every other rank. Messages to or from a rank without one
  /// are refused.
  std::vector<bool> connect_to;

  /// Defaults, overridden by CCLAB_UCX_ERROR_MODE=peer|none.
  static UcxOptions from_env();
};

class UcxTransport : public Transport {
 public:
  /// Collective over `bootstrap` (allgather of worker addresses). `timeout_s` bounds teardown.
  UcxTransport(Bootstrap& bootstrap, double timeout_s, UcxOptions options = UcxOptions::from_env());
  ~UcxTransport() override;

  /// "ucx", or "ucx:tcp" for a context restricted to UcxOptions::transports.
  std::string name() const override;
  /// The transports of the endpoint's lanes, in lane order without repeats: "sysv+cma", "tcp";
  /// empty without an endpoint to `peer`.
  std::string wire_to(int peer) const override;
  RequestPtr send(int peer, const void* buffer, size_t bytes, uint64_t tag) override;
  RequestPtr recv(int peer, void* buffer, size_t bytes, uint64_t tag) override;
  /// ucp_worker_progress(worker) != 0.
  bool progress() override;

  /// Collective, orderly teardown (see above). Idempotent; send/recv throw afterwards.
  void shutdown() override;

  /// The UCX library version, e.g. "1.13.1" (ucp_get_version_string).
  static std::string version();

  /// Transports UCX selected for the endpoint to `peer` (ucp_ep_print_info), for diagnostics.
  /// Lanes are final once the endpoint has carried a message.
  std::string endpoint_info(int peer) const;

  const UcxOptions& options() const { return options_; }

  struct State;  // UCX handles and request bookkeeping (ucx_transport.cc)

 private:
  Bootstrap& bootstrap_;
  UcxOptions options_;
  std::unique_ptr<State> state_;
};

}  // namespace cclab
