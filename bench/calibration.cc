#include "calibration.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <ostream>
#include <sstream>

#include "cclab/error.h"
#include "cclab/host_buffer.h"
#include "cclab/reduce.h"
#include "p2p_bench.h"
#include "patterns/hierarchy.h"
#include "statistics.h"

namespace cclab {
namespace {

LinkCost fit_pair(const std::vector<P2pPoint>& points, int from, int to, size_t own_path_bytes) {
  std::vector<double> bytes, times;
  for (const P2pPoint& point : points)
    if (point.from == from && point.to == to) {
      bytes.push_back(double(point.bytes));
      times.push_back(point.median_us);
    }
  return fit_link_cost(bytes, times, own_path_bytes);
}

// Two arrays of one size for the kernel timings, allocated and touched once however often they run.
struct KernelArrays {
  std::vector<float> a, b;
  explicit KernelArrays(size_t bytes) : a(bytes / 4, 1.0f), b(bytes / 4, 2.0f) {}
};

// Microseconds per byte of `work` over the first `bytes` of each of `arrays` (all of them by
// default; median of several runs). With `comm`, every rank runs it at the same time, as in a
// collective, and rank 0's time counts.
template <typename Work>
double per_byte_cost(KernelArrays& arrays, Comm* comm, Work work, size_t bytes = 0) {
  const size_t elements = bytes ? std::min(bytes / sizeof(float), arrays.a.size()) : arrays.a.size();
  std::vector<double> times;
  for (int i = 0; i < 5; ++i) {
    if (comm) comm->barrier();
    const auto start = std::chrono::steady_clock::now();
    work(arrays.a.data(), arrays.b.data(), elements);
    times.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
  }
  return summarize(times).median / double(elements * sizeof(float));
}

void sum_kernel(float* a, const float* b, size_t n) { reduce(a, a, b, n, DataType::f32, ReduceOp::sum); }
void copy_kernel(float* a, const float* b, size_t n) { std::memcpy(a, b, n * 4); }

// Tags of the calibration's own messages, apart from collectives and the p2p benchmark.
constexpr uint64_t kSharingSequence = 0xFFFFE0;

// What sharing memory with another core of the node costs, per byte, as two ranks of a ring meet it:
// rank 0 and `peer` each reduce into a block and then exchange the blocks, every round. Against a
// reduction into a private buffer, the reduction into the block pays for invalidating the copies the
// peer read last round (shared_write); against an exchange of clean data, the exchange of the blocks
// pays for pulling lines dirty in the other core's cache (dirty_read). How far apart the two cores
// sit decides both. Rank 0's figures count (others return zeros).
struct SharingCosts {
  double shared_write_us_per_byte = 0, dirty_read_us_per_byte = 0;
};

SharingCosts measure_sharing_costs(Comm& comm, int peer, size_t bytes, int rounds, double timeout_s) {
  const size_t elements = bytes / 4;  // f32
  std::vector<float> block(elements, 1.0f), received(elements), private_target(elements), a(elements, 1.0f),
      b(elements, 2.0f);
  std::vector<double> shared_us, private_us, dirty_us, clean_us;
  Transport& transport = comm.transport();
  const int partner = comm.rank() == 0 ? peer : 0;
  auto exchange = [&](const float* data, uint64_t step) {
    const uint64_t tag = message_tag(kSharingSequence, step);
    std::vector<RequestPtr> requests;
    requests.push_back(transport.recv(partner, received.data(), elements * 4, tag));
    requests.push_back(transport.send(partner, data, elements * 4, tag));
    const auto start = Clock::now();
    transport.wait_all(requests, Deadline::after(timeout_s));
    return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
  };
  auto timed_sum = [&](float* target) {
    const auto start = Clock::now();
    reduce(target, a.data(), b.data(), elements, DataType::f32, ReduceOp::sum);
    return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
  };
  comm.barrier();
  for (int round = 0; round < rounds && (comm.rank() == 0 || comm.rank() == peer); ++round) {
    shared_us.push_back(timed_sum(block.data()));
    private_us.push_back(timed_sum(private_target.data()));
    dirty_us.push_back(exchange(block.data(), 2 * uint64_t(round)));
    clean_us.push_back(exchange(a.data(), 2 * uint64_t(round) + 1));
  }
  comm.barrier();
  if (comm.rank() != 0) return {};
  auto extra = [elements](const std::vector<double>& slow, const std::vector<double>& fast) {
    return std::max(0.0, (summarize(slow).median - summarize(fast).median) / double(elements * 4));
  };
  return {extra(shared_us, private_us), extra(dirty_us, clean_us)};
}

// Tags of the host-port measurement.
constexpr uint64_t kHostPortSequence = 0xFFFFE1;

// What a host's ports carry at once, each way, in microseconds per byte: every rank of rank 0's node
// exchanges `window` messages of `bytes` each way with the rank of the same index on `far_rank`'s
// node (as many pairs as the smaller node has ranks), all pairs at once, `rounds` times after one
// untimed round; the ports then carry pairs x rounds x window x bytes each way in the slowest pair's
// time. Both ways at once, as collectives use a link: where the hosts' cores drive the network
// (TCP), each direction gets less than it would alone. Several messages in flight, as a segmented
// collective has them: one large message each way at a time can leave the link idle. Every rank
// returns rank 0's figure.
double measure_host_port_us_per_byte(Comm& comm, int far_rank, size_t bytes, int window, int rounds,
                                     double timeout_s) {
  const NodeLayout layout(comm.topology().node_of_rank);
  const std::vector<int>&near = layout.members(layout.node_of(0)), &far = layout.members(layout.node_of(far_rank));
  const size_t pairs = std::min(near.size(), far.size());
  const int node = layout.node_of(comm.rank()), index = layout.local_index(comm.rank());
  int partner = -1;
  if (size_t(index) < pairs && node == layout.node_of(0)) partner = far[size_t(index)];
  if (size_t(index) < pairs && node == layout.node_of(far_rank)) partner = near[size_t(index)];
  const size_t buffer_bytes = partner >= 0 ? bytes * size_t(window) : 1;
  HostBuffer outgoing(buffer_bytes, 1), incoming(buffer_bytes, 0);
  auto exchange = [&](int round) {
    Transport& transport = comm.transport();
    std::vector<RequestPtr> requests;
    for (int i = 0; i < window; ++i) {
      const uint64_t tag = message_tag(kHostPortSequence, uint64_t(round) * uint64_t(window) + uint64_t(i));
      requests.push_back(transport.recv(partner, incoming.data() + size_t(i) * bytes, bytes, tag));
      requests.push_back(transport.send(partner, outgoing.data() + size_t(i) * bytes, bytes, tag));
    }
    transport.wait_all(requests, Deadline::after(timeout_s));
  };
  if (partner >= 0) exchange(0);
  comm.barrier();
  double elapsed_us = 0;
  if (partner >= 0) {
    const auto start = Clock::now();
    for (int round = 1; round <= rounds; ++round) exchange(round);
    elapsed_us = std::chrono::duration<double, std::micro>(Clock::now() - start).count();
  }
  double slowest_us = 0;
  for (const std::string& packed : comm.allgather(std::string(reinterpret_cast<const char*>(&elapsed_us),
                                                              sizeof elapsed_us))) {
    double time = 0;
    std::memcpy(&time, packed.data(), sizeof time);
    slowest_us = std::max(slowest_us, time);
  }
  return slowest_us / (double(pairs) * double(rounds) * double(window) * double(bytes));
}

// The host-port measurement: segments of the collectives' default size, a few in flight, a few rounds.
constexpr size_t kHostPortBytes = size_t{1} << 20;
constexpr int kHostPortWindow = 4;
constexpr int kHostPortRounds = 5;

// The cached regime's sharing costs: blocks well inside the caches, enough rounds for a median.
constexpr size_t kCachedSharingBytes = size_t{512} << 10;
constexpr int kCachedSharingRounds = 20;

// Passes of the calibration's streaming and sharing measurements (see calibrate_cost_profile).
constexpr int kStreamingPasses = 3;

// Each point's median time over passes of one sweep (the same points in the same order each pass).
std::vector<P2pPoint> median_of_passes(const std::vector<std::vector<P2pPoint>>& passes) {
  std::vector<P2pPoint> merged = passes.front();
  for (size_t i = 0; i < merged.size(); ++i) {
    std::vector<double> times;
    for (const auto& pass : passes) times.push_back(pass.at(i).median_us);
    const double median = summarize(times).median;
    if (median > 0) merged[i].gbps *= merged[i].median_us / median;  // the same bytes in the median's time
    merged[i].median_us = median;
  }
  return merged;
}

// Rank 0's first peer on its own node (`same_node`) or on another; -1 if there is none.
int first_peer_of_rank0(const Comm& comm, bool same_node) {
  const Topology& topology = comm.topology();
  for (int r = 1; r < comm.size(); ++r)
    if (topology.same_node(r, 0) == same_node) return r;
  return -1;
}

}  // namespace

// The exchanges' curve: each exchange's footprint is the bytes it touches on rank 0's node (sent
// and received by both ranks when they share it).
StreamingCurve measure_streaming_curve(const std::vector<P2pPoint>& exchanges, int peer, bool same_node) {
  std::vector<std::pair<size_t, double>> points;
  for (const P2pPoint& point : exchanges)
    if (point.to == peer) points.emplace_back(point.bytes * (same_node ? 4 : 2), point.median_us / double(point.bytes));
  return monotone_streaming_curve(std::move(points));
}

SharingCostTracker::SharingCostTracker(const CostProfile& calibrated)
    : readings_(2, {calibrated.cached.shared_write_us_per_byte, calibrated.cached.dirty_read_us_per_byte}) {}

void SharingCostTracker::refresh(Comm& comm, CostProfile& profile, double timeout_s) {
  const int peer = first_peer_of_rank0(comm, true);
  if (peer < 0) return;
  const SharingCosts sharing = measure_sharing_costs(comm, peer, kCachedSharingBytes, kCachedSharingRounds, timeout_s);
  const std::string packed =
      comm.rank() == 0 ? std::string(reinterpret_cast<const char*>(&sharing), sizeof sharing) : "";
  SharingCosts rank0;
  std::memcpy(&rank0, comm.allgather(packed)[0].data(), sizeof rank0);
  add_reading(rank0.shared_write_us_per_byte, rank0.dirty_read_us_per_byte, profile);
}

void SharingCostTracker::add_reading(double shared_write_us_per_byte, double dirty_read_us_per_byte,
                                     CostProfile& profile) {
  readings_.emplace_back(shared_write_us_per_byte, dirty_read_us_per_byte);
  if (readings_.size() > 3) readings_.erase(readings_.begin());
  auto median_of = [&](double std::pair<double, double>::*member) {
    std::vector<double> values;
    for (const auto& reading : readings_) values.push_back(reading.*member);
    return summarize(values).median;
  };
  profile.cached.shared_write_us_per_byte = median_of(&std::pair<double, double>::first);
  profile.cached.dirty_read_us_per_byte = median_of(&std::pair<double, double>::second);
}

CostProfile calibrate_cost_profile(Comm& comm, const CalibrationOptions& options) {
  const int intra_peer = first_peer_of_rank0(comm, true), inter_peer = first_peer_of_rank0(comm, false);
  P2pBenchOptions p2p;
  p2p.test = P2pTest::latency;
  p2p.min_bytes = 8;
  p2p.max_bytes = options.max_bytes;
  p2p.step_factor = 4;
  p2p.iters = options.iters;  // the cached fit's sweep: 8 B .. max_bytes by x4
  p2p.warmup = options.warmup;
  p2p.timeout_s = options.timeout_s;
  p2p.pairs.clear();
  if (intra_peer > 0) p2p.pairs.emplace_back(0, intra_peer);
  if (inter_peer > 0) p2p.pairs.emplace_back(0, inter_peer);

  std::ostringstream discard;
  const std::vector<P2pPoint> points = run_p2p_bench(comm, p2p, {}, discard);

  // Collectives move data both ways at once, so large messages are timed that way: sizes from a
  // cached one (the large-message beta) up to arrays far larger than the caches (the streaming
  // beta), in one sweep over the same buffers; the sizes between give the curve. The turn from
  // cached to streaming is sharp, so the sweep steps by sqrt 2.
  P2pBenchOptions exchange = p2p;
  exchange.test = P2pTest::bibw;
  exchange.window = 1;
  exchange.min_bytes = options.concurrent_bytes;
  exchange.max_bytes = options.streaming_bytes;
  exchange.step_factor = std::sqrt(2.0);
  exchange.iters = 3;
  exchange.warmup = 1;
  exchange.warmup_bytes = size_t{32} << 20;
  // The memory regimes are the node's: with a same-node peer, only it (the link between nodes is timed apart).
  if (intra_peer > 0) exchange.pairs = {{0, intra_peer}};
  // The streaming side runs in passes spread over time, and each figure keeps the median of its
  // passes: what the machine gives a core that streams changes every few seconds (the VM's cores
  // move between dies, neighbours use the memory), so one pass can land in a slow moment.
  std::vector<std::vector<P2pPoint>> exchange_passes;
  // Reductions on every rank at once, as a collective runs them, over arrays growing by sqrt 2 to
  // beyond the caches: the largest gives the streaming gamma, the sweep the kernels' own curve.
  std::vector<size_t> kernel_bytes;
  for (double bytes = double(options.concurrent_bytes); bytes <= double(options.streaming_bytes) * 1.001;
       bytes *= std::sqrt(2.0))
    kernel_bytes.push_back(size_t(bytes) / 64 * 64);
  std::vector<std::vector<double>> gamma_passes(kernel_bytes.size());  // [size][pass] us per byte
  std::vector<double> copy_passes;
  // The cached sharing costs in every pass too: one reading can fall in a moment when the two cores
  // sit on different dies, and a saved profile should keep what lasts.
  std::vector<double> shared_write_passes, dirty_read_passes;
  KernelArrays streaming_arrays(options.streaming_bytes);
  for (int pass = 0; pass < kStreamingPasses; ++pass) {
    exchange_passes.push_back(run_p2p_bench(comm, exchange, {}, discard));
    for (size_t i = 0; i < kernel_bytes.size(); ++i)
      gamma_passes[i].push_back(per_byte_cost(streaming_arrays, &comm, sum_kernel, kernel_bytes[i]));
    copy_passes.push_back(per_byte_cost(streaming_arrays, &comm, copy_kernel));
    if (intra_peer > 0) {
      const SharingCosts cached =
          measure_sharing_costs(comm, intra_peer, kCachedSharingBytes, kCachedSharingRounds, options.timeout_s);
      shared_write_passes.push_back(cached.shared_write_us_per_byte);
      dirty_read_passes.push_back(cached.dirty_read_us_per_byte);
    }
  }
  const std::vector<P2pPoint> exchanged = median_of_passes(exchange_passes);
  // The kernel's footprint: its two arrays on every rank of rank 0's node.
  const Topology& topology = comm.topology();
  const auto node_ranks = size_t(topology.ranks_on_node_of(0));
  std::vector<std::pair<size_t, double>> gamma_by_footprint;
  for (size_t i = 0; i < kernel_bytes.size(); ++i)
    gamma_by_footprint.emplace_back(2 * kernel_bytes[i] * node_ranks, summarize(gamma_passes[i]).median);

  CostProfile profile;
  profile.transport = comm.transport().name();
  // Kernels alone on small buffers give the cached regime.
  constexpr size_t kCachedKernelBytes = size_t{256} << 10;
  KernelArrays cached_arrays(kCachedKernelBytes);
  profile.cached.gamma_us_per_byte = per_byte_cost(cached_arrays, nullptr, sum_kernel);
  profile.cached.copy_us_per_byte = per_byte_cost(cached_arrays, nullptr, copy_kernel);
  // Their point opens the kernels' curve: the sweep's smallest arrays (a rank's share of a
  // megabyte collective) already run from the last-level cache, several times slower than these
  // from a core's own caches, and the regime between the two is the curve's to give.
  gamma_by_footprint.insert(gamma_by_footprint.begin(), {2 * kCachedKernelBytes, profile.cached.gamma_us_per_byte});
  profile.streaming.gamma_us_per_byte = gamma_by_footprint.back().second;
  profile.streaming.copy_us_per_byte = summarize(copy_passes).median;
  if (intra_peer > 0) {
    profile.cached.shared_write_us_per_byte = summarize(shared_write_passes).median;
    profile.cached.dirty_read_us_per_byte = summarize(dirty_read_passes).median;
    // Blocks beyond the caches: what the peer read is only partly still in its caches.
    const SharingCosts streaming =
        measure_sharing_costs(comm, intra_peer, options.streaming_bytes / 4, 5, options.timeout_s);
    profile.streaming.shared_write_us_per_byte = streaming.shared_write_us_per_byte;
    profile.streaming.dirty_read_us_per_byte = streaming.dirty_read_us_per_byte;
  }

  if (inter_peer > 0)
    profile.host_ports.us_per_byte =
        measure_host_port_us_per_byte(comm, inter_peer, kHostPortBytes, kHostPortWindow, kHostPortRounds,
                                      options.timeout_s);

  std::string shared;
  if (comm.rank() == 0) {
    auto link = [&](int peer) {
      LinkCost cached = fit_pair(points, 0, peer, own_path_bytes(comm.transport())), stream = cached;
      // Between nodes the network sets the rate, one direction apart from the other, as the
      // ping-pong measures it: an exchange with one peer both ways at once measures that peer's
      // host as well (over TCP on a shared core, at times half the rate either way alone).
      if (!comm.topology().same_node(0, peer)) return std::pair{cached, stream};
      // The sweep's smallest exchange is cached, its largest streams: they set the beta of the
      // largest messages' line, and the streaming regime's betas.
      const P2pPoint *smallest = nullptr, *largest = nullptr;
      for (const P2pPoint& point : exchanged) {
        if (point.to != peer) continue;
        if (!smallest || point.bytes < smallest->bytes) smallest = &point;
        if (!largest || point.bytes > largest->bytes) largest = &point;
      }
      if (smallest) {
        (cached.protocol_bytes == SIZE_MAX ? cached.beta_us_per_byte : cached.large_beta_us_per_byte) =
            smallest->median_us / double(smallest->bytes);
        stream.beta_us_per_byte = stream.large_beta_us_per_byte = largest->median_us / double(largest->bytes);
      }
      return std::pair{cached, stream};
    };
    const auto intra = link(intra_peer > 0 ? intra_peer : inter_peer);
    const auto inter = link(inter_peer > 0 ? inter_peer : intra_peer);
    profile.cached.intra_node = intra.first;
    profile.streaming.intra_node = intra.second;
    profile.cached.inter_node = inter.first;
    profile.streaming.inter_node = inter.second;
    profile.streaming_curve =
        measure_streaming_curve(exchanged, intra_peer > 0 ? intra_peer : inter_peer, intra_peer > 0);
    profile.kernel_streaming_curve = monotone_streaming_curve(gamma_by_footprint);
    shared = profile_to_json(profile);
  }
  return profile_from_json(comm.allgather(shared)[0]);
}

}  // namespace cclab
