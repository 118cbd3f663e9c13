// UCX transport: UCP tag API over host memory (DESIGN 3.2).
//
// Wiring. The constructor creates a UCP context (UCP_FEATURE_TAG) and one single-threaded worker,
// exchanges worker addresses with Bootstrap::allgather and creates an endpoint to every other rank.
// By default endpoints use error handling mode "none", because UCX 1.13 drops its shared-memory
// transports in mode "peer" (see UcxOptions): a dead peer is then caught by the wait deadlines and,
// faster, by the launcher (cclab's supervisor or mpirun), which names the rank that died.
// CCLAB_UCX_ERROR_MODE=peer reports peer failures at once, over TCP, for multi-host jobs.
// Construction is collective: the allgather, then a bootstrap barrier once every rank has created
// its endpoints (shared-memory endpoints attach to the peer's segments in ucp_ep_create, so no
// rank may destroy its worker before that). Other connections are wired up lazily on first use.
//
// Messages. send()/recv() post ucp_tag_send_nbx / ucp_tag_recv_nbx with the wire tag
// wire_tag(tag, sender) and a full tag mask, and count bytes and messages at post. A receive must
// get exactly `bytes`: a longer message is an error (UCX truncation), a shorter one too.
// Progress. UCX has no progress thread here: every request completes only while its own rank calls
// progress() (Transport::wait does); complete() itself never progresses. Eager sends (below the
// rendezvous threshold: about 8 KiB on shared memory, 20 KiB on TCP with UCX 1.13 defaults, see
// UCX_RNDV_THRESH) complete locally whether or not the receiver is ready; larger sends complete
// only after the receiver has posted the matching receive AND progressed (it pulls the data, then
// acknowledges), and the sender progressed to see the acknowledgement. Post receives early: two
// ranks that each wait on a large send before posting their receive deadlock until the deadline.
//
// Teardown. Peers may finish at different times, so there are two steps:
//  - shutdown() (explicit, collective, call it only when all ranks are healthy): a bootstrap
//    barrier (so no rank closes while a peer still has traffic for it), flush and close every
//    endpoint (bounded), a second barrier (so no rank destroys its worker while a peer is still
//    closing towards it, which would show up as transport errors there), then worker and context
//    are released. The worker keeps progressing while this rank waits in those barriers, since a
//    peer's flush, close or lazy connection setup may need it to answer. If a peer is dead the barrier may throw or block; that is the bootstrap's
//    deadline to enforce, so on error paths do not call shutdown(), just destroy the transport.
//  - the destructor does only local cleanup with bounded waits: cancel pending receives, flush
//    endpoints for at most min(timeout, 2 s), close flushed ones with UCP_EP_CLOSE_MODE_FLUSH and
//    the rest (failed peers, flush timeouts) with FORCE (in error mode "none", where FORCE is not
//    safe for the peer, with FLUSH too), progress for at most the same bound again, free every
//    remaining request, destroy worker and context. It never throws and never talks to the
//    bootstrap, so it cannot hang on a dead peer (worst case about 2 x 2 s).
//
// Requests. A UcxRequest holds the UCX request handle (or is "completed immediately"). complete()
// polls ucp_request_check_status / ucp_tag_recv_request_test, turns errors (truncation, peer
// failure, cancellation) into cclab::Error, and frees the UCX handle once finished. Destroying a
// request that is still pending cancels it (receives) and frees the handle. UCX 1.13 cannot
// cancel a send, nor a receive that is already matched and in flight: after abandoning such a
// request keep its buffer alive until the transport is destroyed (its destructor closes the
// endpoints, force-closing in mode "peer" what does not flush in time, which ends every transfer). Requests may outlive the transport: they are detached
// then and report an error if they had not completed.
//
// Threading: one transport per thread; a transport and its requests are used by one thread.
#pragma once

#include <memory>
#include <string>

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

  /// Defaults, overridden by CCLAB_UCX_ERROR_MODE=peer|none.
  static UcxOptions from_env();
};

class UcxTransport : public Transport {
 public:
  /// Collective over `bootstrap` (allgather of worker addresses). `timeout_s` bounds teardown.
  UcxTransport(Bootstrap& bootstrap, double timeout_s, UcxOptions options = UcxOptions::from_env());
  ~UcxTransport() override;

  std::string name() const override { return "ucx"; }
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
