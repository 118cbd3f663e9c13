#include "transports/ucx/ucx_transport.h"

#include <sched.h>
#include <ucp/api/ucp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <tuple>
#include <unordered_set>
#include <utility>
#include <vector>

#include "cclab/error.h"

namespace cclab {
namespace {

// UCX context/worker creation and destruction touch process-wide state (component loading,
// global configuration); several transports in one process (ranks as threads) serialise them.
std::mutex& ucx_global_mutex() {
  static std::mutex mutex;
  return mutex;
}

[[noreturn]] void fail(const std::string& what, ucs_status_t status) {
  throw Error("ucx: " + what + ": " + ucs_status_string(status));
}

// ---- RAII wrappers -------------------------------------------------------------------------

struct ConfigDeleter {
  void operator()(ucp_config_t* config) const noexcept { ucp_config_release(config); }
};
struct ContextDeleter {
  void operator()(ucp_context* context) const noexcept {
    std::lock_guard lock(ucx_global_mutex());
    ucp_cleanup(context);
  }
};
struct WorkerDeleter {
  void operator()(ucp_worker* worker) const noexcept {
    std::lock_guard lock(ucx_global_mutex());
    ucp_worker_destroy(worker);
  }
};
using ContextPtr = std::unique_ptr<ucp_context, ContextDeleter>;
using WorkerPtr = std::unique_ptr<ucp_worker, WorkerDeleter>;

ContextPtr make_context(int ranks, const std::string& net_devices, const std::string& transports) {
  std::lock_guard lock(ucx_global_mutex());
  ucp_config_t* raw_config = nullptr;
  ucs_status_t status = ucp_config_read(nullptr, nullptr, &raw_config);
  if (status != UCS_OK) fail("ucp_config_read", status);
  std::unique_ptr<ucp_config_t, ConfigDeleter> config(raw_config);
  // Every TCP device UCX opens is a listening socket on that device's address.
  const char* user_devices = std::getenv("UCX_NET_DEVICES");
  if (!net_devices.empty() && (user_devices == nullptr || *user_devices == '\0')) {
    status = ucp_config_modify(config.get(), "NET_DEVICES", net_devices.c_str());
    if (status != UCS_OK) fail("ucp_config_modify NET_DEVICES=" + net_devices, status);
  }
  if (!transports.empty()) {
    status = ucp_config_modify(config.get(), "TLS", transports.c_str());
    if (status != UCS_OK) fail("ucp_config_modify TLS=" + transports, status);
  }
  ucp_params_t params{};
  params.field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_ESTIMATED_NUM_EPS | UCP_PARAM_FIELD_MT_WORKERS_SHARED;
  params.features = UCP_FEATURE_TAG;
  params.estimated_num_eps = size_t(std::max(ranks - 1, 1));
  params.mt_workers_shared = 0;
  ucp_context_h context = nullptr;
  status = ucp_init(&params, config.get(), &context);
  if (status != UCS_OK) {
    std::string what = "ucp_init";
    if (!transports.empty())
      what.append(" with transports '").append(transports).append("' (ucx_info -d lists this host's)");
    fail(what, status);
  }
  return ContextPtr(context);
}

WorkerPtr make_worker(ucp_context_h context) {
  std::lock_guard lock(ucx_global_mutex());
  ucp_worker_params_t params{};
  params.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
  params.thread_mode = UCS_THREAD_MODE_SINGLE;
  ucp_worker_h worker = nullptr;
  ucs_status_t status = ucp_worker_create(context, &params, &worker);
  if (status != UCS_OK) fail("ucp_worker_create", status);
  return WorkerPtr(worker);
}

/// The worker's address as bytes (ucp_worker_get_address / ucp_worker_release_address).
std::string worker_address(ucp_worker_h worker) {
  ucp_address_t* address = nullptr;
  size_t length = 0;
  ucs_status_t status = ucp_worker_get_address(worker, &address, &length);
  if (status != UCS_OK) fail("ucp_worker_get_address", status);
  std::string bytes(reinterpret_cast<const char*>(address), length);
  ucp_worker_release_address(worker, address);
  return bytes;
}

// Zero-byte messages still need a valid address for some UCX paths.
char zero_byte_buffer[1];

double clamp_bound(double timeout_s) { return std::clamp(timeout_s, 0.1, 2.0); }

// A transport destroyed without shutdown() belongs to a failed job: what is still in flight matters
// to nobody, and a peer behind a dead link would only make every wait run to its bound. Its
// endpoints get this long to close, with no flush first.
constexpr double kFailedJobCloseBoundS = 0.25;

}  // namespace

class UcxRequest;

// ---- Transport state -----------------------------------------------------------------------

struct UcxTransport::State {
  struct Peer {
    int rank = -1;
    ucp_ep_h ep = nullptr;
    ucs_status_t failure = UCS_OK;  // set by the endpoint error callback
  };

  int rank, size;
  bool peer_error_handling;
  double teardown_bound_s;
  ContextPtr context;
  WorkerPtr worker;
  std::vector<Peer> peers;                // indexed by rank; never resized after construction
  std::vector<bool> unconnected;          // by rank: no endpoint by design (UcxOptions::connect_to)
  std::unordered_set<UcxRequest*> live;   // requests that still hold a UCX handle
  unsigned polls_with_none_live = 0;      // progress() calls while `live` was empty
  bool closed = false;                    // endpoints closed: no more send/recv

  State(int rank, int size, bool peer_error_handling, double timeout_s)
      : rank(rank),
        size(size),
        peer_error_handling(peer_error_handling),
        teardown_bound_s(clamp_bound(timeout_s)),
        peers(size) {}
  ~State() { teardown(); }

  static void on_endpoint_error(void* arg, ucp_ep_h, ucs_status_t status) {
    auto* peer = static_cast<Peer*>(arg);
    if (peer->failure == UCS_OK) peer->failure = status == UCS_OK ? UCS_ERR_UNREACHABLE : status;
  }

  std::string who() const { return "ucx: rank " + std::to_string(rank); }

  // UcxOptions::connect_to left out `peer`: its messages belong to another transport.
  void check_connected(int peer) const {
    if (!unconnected.empty() && unconnected[size_t(peer)])
      throw Error(who() + ": no endpoint to rank " + std::to_string(peer) + " on this transport");
  }

  /// Progresses until nothing more happens (bounded), so messages that already arrived are seen.
  void drain() {
    for (int i = 0; i < 1000 && worker && ucp_worker_progress(worker.get()) != 0; ++i) {
    }
  }

  void detach(UcxRequest& request, bool cancel);
  /// Flushes (bounded) and closes every endpoint; `job_failed`: no flush, a short bound.
  void close_endpoints(bool job_failed = false) noexcept;
  void teardown() noexcept;
};

// ---- Requests ------------------------------------------------------------------------------

class UcxRequest final : public Request {
 public:
  UcxRequest(UcxTransport::State* state, int peer, size_t bytes, bool is_send, uint64_t wire_tag)
      : Request(peer, bytes, is_send), state_(state), wire_tag_(wire_tag), rank_(state->rank) {}

  ~UcxRequest() override {
    if (handle_ && state_) {
      state_->live.erase(this);
      if (!is_send) ucp_request_cancel(state_->worker.get(), handle_);
      ucp_request_free(handle_);  // UCX releases it once it finishes
      handle_ = nullptr;
    }
  }

  /// Takes the result of a ucp_tag_*_nbx call. An immediate error is kept for complete() to
  /// throw, so every transfer error surfaces from wait(). `length`: bytes moved if done now.
  void posted(ucs_status_ptr_t result, size_t length) {
    if (result == nullptr) {
      settle(UCS_OK, length);
    } else if (UCS_PTR_IS_ERR(result)) {
      settle(UCS_PTR_STATUS(result), length);
    } else {
      handle_ = result;
      state_->live.insert(this);
    }
  }

  bool complete() override {
    if (!error_.empty()) throw Error(error_);
    if (done_) return true;
    if (!handle_) throw Error(describe("transport was destroyed before it completed"));
    auto [status, length] = poll();
    if (status == UCS_INPROGRESS) {
      const ucs_status_t failure = state_->peers[peer].failure;
      if (failure == UCS_OK) return false;
      // The peer failed: take in whatever it managed to deliver before giving up on it.
      state_->drain();
      std::tie(status, length) = poll();
      if (status == UCS_INPROGRESS) {
        state_->detach(*this, /*cancel=*/true);
        error_ = describe(std::string("peer failed (") + ucs_status_string(failure) + ")");
        throw Error(error_);
      }
    }
    state_->detach(*this, /*cancel=*/false);
    settle(status, length);
    if (!error_.empty()) throw Error(error_);
    return true;
  }

 private:
  friend struct UcxTransport::State;

  std::pair<ucs_status_t, size_t> poll() const {
    if (is_send) return {ucp_request_check_status(handle_), bytes};
    ucp_tag_recv_info_t info{};
    ucs_status_t status = ucp_tag_recv_request_test(handle_, &info);
    return {status, status == UCS_OK ? info.length : bytes};
  }

  std::string describe(const std::string& what) const {
    return "ucx: rank " + std::to_string(rank_) + ": " + (is_send ? "send of " : "receive of ") +
           std::to_string(bytes) + " bytes " + (is_send ? "to" : "from") + " rank " + std::to_string(peer) +
           " (tag " + std::to_string(wire_tag_ >> kTagSenderBits) + ") failed: " + what;
  }

  /// Records the final status (no throw).
  void settle(ucs_status_t status, size_t length) {
    if (status == UCS_OK && !is_send && length != bytes)
      error_ = describe("message of " + std::to_string(length) + " bytes, expected exactly " + std::to_string(bytes));
    else if (status == UCS_ERR_MESSAGE_TRUNCATED)
      error_ = describe("message longer than the " + std::to_string(bytes) + "-byte buffer (truncated)");
    else if (status != UCS_OK)
      error_ = describe(ucs_status_string(status));
    else
      done_ = true;
  }

  UcxTransport::State* state_;
  uint64_t wire_tag_;
  int rank_;
  void* handle_ = nullptr;  // UCX request; null when completed immediately, freed or detached
  bool done_ = false;
  std::string error_;
};

void UcxTransport::State::detach(UcxRequest& request, bool cancel) {
  if (!request.handle_) return;
  live.erase(&request);
  if (cancel && !request.is_send) ucp_request_cancel(worker.get(), request.handle_);
  ucp_request_free(request.handle_);
  request.handle_ = nullptr;
}

void UcxTransport::State::close_endpoints(bool job_failed) noexcept {
  if (closed || !worker) return;
  closed = true;
  const double bound_s = job_failed ? std::min(teardown_bound_s, kFailedJobCloseBoundS) : teardown_bound_s;
  ucp_worker_h w = worker.get();
  using Seconds = std::chrono::duration<double>;

  // Pending receives can never complete now; cancel them so they do not hold buffers.
  for (UcxRequest* request : live)
    if (!request->is_send) ucp_request_cancel(w, request->handle_);

  // 1. Flush every healthy endpoint, for a bounded time.
  std::vector<void*> flushing(size, nullptr);
  std::vector<bool> flushed(size, false);
  for (Peer& peer : peers) {
    if (!peer.ep || peer.failure != UCS_OK || job_failed) continue;
    ucp_request_param_t param{};
    ucs_status_ptr_t result = ucp_ep_flush_nbx(peer.ep, &param);
    if (result == nullptr)
      flushed[peer.rank] = true;
    else if (!UCS_PTR_IS_ERR(result))
      flushing[peer.rank] = result;
  }
  auto settle_all = [&](std::vector<void*>& requests, std::vector<bool>* ok) {
    bool pending = false;
    for (size_t p = 0; p < requests.size(); ++p) {
      if (!requests[p]) continue;
      ucs_status_t status = ucp_request_check_status(requests[p]);
      if (status == UCS_INPROGRESS) {
        pending = true;
        continue;
      }
      if (ok) (*ok)[p] = status == UCS_OK;
      ucp_request_free(requests[p]);
      requests[p] = nullptr;
    }
    return pending;
  };
  auto progress_until = [&](std::vector<void*>& requests, std::vector<bool>* ok) {
    const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(Seconds(bound_s));
    while (settle_all(requests, ok) && Clock::now() < deadline)
      if (ucp_worker_progress(w) == 0) sched_yield();
    for (void*& request : requests)  // still pending: UCX frees it when it ends (or at worker destroy)
      if (request) ucp_request_free(std::exchange(request, nullptr));
  };
  progress_until(flushing, &flushed);

  // 2. Close: FLUSH mode where the flush succeeded (nothing left to send, so this is quick),
  //    FORCE for failed peers and flush timeouts (cancels what is outstanding on that endpoint).
  std::vector<void*> closing(size, nullptr);
  for (Peer& peer : peers) {
    if (!peer.ep) continue;
    ucp_request_param_t param{};
    param.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
    param.flags = flushed[peer.rank] || !peer_error_handling ? 0 : UCP_EP_CLOSE_FLAG_FORCE;
    ucs_status_ptr_t result = ucp_ep_close_nbx(peer.ep, &param);
    peer.ep = nullptr;
    if (result != nullptr && !UCS_PTR_IS_ERR(result)) closing[peer.rank] = result;
  }
  progress_until(closing, nullptr);
  drain();  // let cancelled and purged requests reach their final state
}

void UcxTransport::State::teardown() noexcept {
  if (!worker) return;
  close_endpoints(/*job_failed=*/!closed);  // shutdown() closed them already on a job's normal end
  // Requests the caller still holds: settle them from their final UCX status and detach them.
  for (UcxRequest* request : std::vector<UcxRequest*>(live.begin(), live.end())) {
    auto [status, length] = request->poll();
    detach(*request, /*cancel=*/true);
    if (status == UCS_INPROGRESS)
      request->error_ = request->describe("transport was destroyed before it completed");
    else
      request->settle(status, length);
    request->state_ = nullptr;
  }
  live.clear();
  worker.reset();
  context.reset();
}

// ---- UcxTransport --------------------------------------------------------------------------

namespace {
/// A bootstrap barrier during which the worker keeps progressing: a peer's flush, close or
/// connection setup may need this worker to answer while this rank already waits for the others.
/// The worker stays on the calling thread (UCS_THREAD_MODE_SINGLE); a helper thread runs the
/// barrier (the MPI bootstrap initialises MPI_THREAD_SERIALIZED, the others are plain sockets or
/// shared memory, and the calling thread does not use the bootstrap meanwhile).
void progressing_barrier(Bootstrap& bootstrap, ucp_worker_h worker) {
  std::atomic<bool> done{false};
  std::exception_ptr error;
  std::thread helper([&] {
    try {
      bootstrap.barrier();
    } catch (...) {
      error = std::current_exception();
    }
    done.store(true, std::memory_order_release);
  });
  while (!done.load(std::memory_order_acquire))
    if (ucp_worker_progress(worker) == 0) sched_yield();
  helper.join();
  if (error) std::rethrow_exception(error);
}
}  // namespace

UcxOptions UcxOptions::from_env() {
  UcxOptions options;
  if (const char* mode = std::getenv("CCLAB_UCX_ERROR_MODE"); mode && *mode) {
    const std::string value = mode;
    if (value == "peer")
      options.peer_error_handling = true;
    else if (value == "none")
      options.peer_error_handling = false;
    else
      throw UsageError("CCLAB_UCX_ERROR_MODE must be 'peer' or 'none', not '" + value + "'");
  }
  return options;
}

UcxTransport::UcxTransport(Bootstrap& bootstrap, double timeout_s, UcxOptions options)
    : Transport(bootstrap.rank(), bootstrap.size()), bootstrap_(bootstrap), options_(options) {
  if (size() < 1 || uint64_t(size()) > kMaxRanks)
    throw Error("ucx: unsupported number of ranks " + std::to_string(size()));
  state_ = std::make_unique<State>(rank(), size(), options_.peer_error_handling, timeout_s);
  State& s = *state_;
  if (!options_.connect_to.empty() && int(options_.connect_to.size()) != size())
    throw Error(s.who() + ": UcxOptions::connect_to names " + std::to_string(options_.connect_to.size()) +
                " ranks, the job has " + std::to_string(size()));
  for (size_t p = 0; p < options_.connect_to.size(); ++p)
    s.unconnected.push_back(int(p) != rank() && !options_.connect_to[p]);
  s.context = make_context(size(), options_.net_devices, options_.transports);
  s.worker = make_worker(s.context.get());

  // Each contribution: one byte for the error mode (all ranks must agree), then the address.
  const char mode = options_.peer_error_handling ? 'P' : 'N';
  std::vector<std::string> addresses = bootstrap_.allgather(mode + worker_address(s.worker.get()));
  if (int(addresses.size()) != size())
    throw Error(s.who() + ": bootstrap returned " + std::to_string(addresses.size()) + " addresses for " +
                std::to_string(size()) + " ranks");
  for (int p = 0; p < size(); ++p) {
    if (addresses[p].size() < 2) throw Error(s.who() + ": no worker address from rank " + std::to_string(p));
    if (addresses[p][0] != mode)
      throw Error(s.who() + ": rank " + std::to_string(p) + " uses UCX error mode " +
                  (addresses[p][0] == 'P' ? "peer" : "none") + ", this rank " + (mode == 'P' ? "peer" : "none") +
                  " (set CCLAB_UCX_ERROR_MODE alike on every rank)");
    addresses[p].erase(0, 1);
  }

  for (int p = 0; p < size(); ++p) {
    State::Peer& peer = s.peers[p];
    peer.rank = p;
    if (p == rank() || (!s.unconnected.empty() && s.unconnected[size_t(p)])) continue;
    ucp_ep_params_t params{};
    params.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                        UCP_EP_PARAM_FIELD_ERR_HANDLER;
    params.address = reinterpret_cast<const ucp_address_t*>(addresses[p].data());
    if (options_.peer_error_handling) {
      params.err_mode = UCP_ERR_HANDLING_MODE_PEER;
      params.err_handler.cb = &State::on_endpoint_error;
      params.err_handler.arg = &peer;
    } else {
      params.field_mask &= ~uint64_t(UCP_EP_PARAM_FIELD_ERR_HANDLER);
      params.err_mode = UCP_ERR_HANDLING_MODE_NONE;
    }
    ucs_status_t status = ucp_ep_create(s.worker.get(), &params, &peer.ep);
    if (status != UCS_OK)
      fail("rank " + std::to_string(rank()) + ": ucp_ep_create to rank " + std::to_string(p) +
               (options_.transports.empty() ? ""
                                            : " over UCX transport '" + options_.transports +
                                                  "' (is it available here? ucx_info -d lists them)"),
           status);
  }
  // Shared-memory endpoints attach to the peer's segments inside ucp_ep_create: no rank may tear
  // its worker down before every rank has created its endpoints.
  progressing_barrier(bootstrap_, s.worker.get());
}

UcxTransport::~UcxTransport() = default;  // State::~State does the bounded local teardown

RequestPtr UcxTransport::send(int peer, const void* buffer, size_t bytes, uint64_t tag) {
  check_peer(peer);
  State& s = *state_;
  if (s.closed) throw Error(s.who() + ": send after shutdown");
  s.check_connected(peer);
  if (tag >> (64 - kTagSenderBits)) throw Error(s.who() + ": tag " + std::to_string(tag) + " exceeds 48 bits");
  const uint64_t wtag = wire_tag(tag, rank());
  count_send(peer, bytes);
  auto request = std::make_unique<UcxRequest>(&s, peer, bytes, true, wtag);
  if (s.peers[peer].failure != UCS_OK) {
    request->posted(UCS_STATUS_PTR(s.peers[peer].failure), bytes);  // complete() throws, naming the peer
    return request;
  }
  ucp_request_param_t param{};
  const void* data = buffer ? buffer : zero_byte_buffer;
  request->posted(ucp_tag_send_nbx(s.peers[peer].ep, data, bytes, wtag, &param), bytes);
  return request;
}

RequestPtr UcxTransport::recv(int peer, void* buffer, size_t bytes, uint64_t tag) {
  check_peer(peer);
  State& s = *state_;
  if (s.closed) throw Error(s.who() + ": receive after shutdown");
  s.check_connected(peer);
  if (tag >> (64 - kTagSenderBits)) throw Error(s.who() + ": tag " + std::to_string(tag) + " exceeds 48 bits");
  const uint64_t wtag = wire_tag(tag, peer);
  count_receive(peer, bytes);
  auto request = std::make_unique<UcxRequest>(&s, peer, bytes, false, wtag);
  // UCX 1.13 does not fill recv_info when a receive completes immediately, so ask for a request
  // handle every time: ucp_tag_recv_request_test then reports the received length.
  ucp_request_param_t param{};
  param.op_attr_mask = UCP_OP_ATTR_FLAG_NO_IMM_CMPL;
  void* data = buffer ? buffer : zero_byte_buffer;
  request->posted(ucp_tag_recv_nbx(s.worker.get(), data, bytes, wtag, ~ucp_tag_t{0}, &param), 0);
  return request;
}

bool UcxTransport::progress() {
  // With none of this rank's requests in flight, the worker would only take in messages no receive
  // asks for yet (or a peer's failure): every kIdleProgressEvery-th poll does that, so a
  // latency-bound collective over the node's mailboxes does not pay a worker's poll per poll of
  // its own, and a peer whose send waits for room in this rank's queue still gets through.
  constexpr unsigned kIdleProgressEvery = 16;
  State& s = *state_;
  if (!s.worker) return false;
  if (s.live.empty() && ++s.polls_with_none_live % kIdleProgressEvery != 0) return false;
  return ucp_worker_progress(s.worker.get()) != 0;
}

void UcxTransport::shutdown() {
  State& s = *state_;
  if (!s.worker) return;
  if (!s.closed) {
    progressing_barrier(bootstrap_, s.worker.get());  // every rank has finished its traffic
    s.close_endpoints();
  }
  progressing_barrier(bootstrap_, s.worker.get());  // every rank has closed; workers may go now
  s.teardown();
}

std::string UcxTransport::version() { return ucp_get_version_string(); }

std::string UcxTransport::name() const {
  std::string text = "ucx";
  if (!options_.transports.empty()) text.append(":").append(options_.transports);
  return text;
}

std::string UcxTransport::wire_to(int peer) const {
  check_peer(peer);
  if (!state_->peers[size_t(peer)].ep) return {};
  // UCX 1.13's ucp_ep_query cannot name the transports, so read them from ucp_ep_print_info, one
  // line per lane: "lane[1]:  5:cma/memory.0 md[4]  -> md[4]/cma/sysdev[255] rma_bw#0". The lanes
  // are chosen from the peer's address when the endpoint is created.
  const std::string info = endpoint_info(peer);
  std::vector<std::string> transports;
  for (size_t at = info.find("lane["); at != std::string::npos; at = info.find("lane[", at + 1)) {
    const size_t line_end = std::min(info.find('\n', at), info.size());
    const size_t label_end = info.find("]:", at);
    const size_t number_end = label_end == std::string::npos ? label_end : info.find(':', label_end + 2);
    const size_t slash = number_end == std::string::npos ? number_end : info.find('/', number_end);
    if (slash == std::string::npos || slash > line_end) continue;
    const std::string transport = info.substr(number_end + 1, slash - number_end - 1);
    if (!transport.empty() && std::find(transports.begin(), transports.end(), transport) == transports.end())
      transports.push_back(transport);
  }
  std::string wire;
  for (const std::string& transport : transports) {
    if (!wire.empty()) wire += '+';
    wire += transport;
  }
  return wire;
}

std::string UcxTransport::endpoint_info(int peer) const {
  check_peer(peer);
  const State& s = *state_;
  if (!s.peers[peer].ep) return "(endpoint closed)";
  char* text = nullptr;
  size_t length = 0;
  FILE* stream = open_memstream(&text, &length);
  if (!stream) return "(open_memstream failed)";
  ucp_ep_print_info(s.peers[peer].ep, stream);
  std::fclose(stream);
  std::string result(text, length);
  std::free(text);
  return result;
}

}  // namespace cclab
