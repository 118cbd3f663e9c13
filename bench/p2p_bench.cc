#include "p2p_bench.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <ostream>

#include "cclab/device.h"
#include "cclab/host_buffer.h"
#include "cclab/trace.h"
#include "results.h"
#include "size_sweep.h"
#include "statistics.h"
#include "text_format.h"

namespace cclab {
namespace {

// Tags of the p2p benchmark live far from the collectives' sequence numbers.
constexpr uint64_t kP2pSequence = 0xFFFFF0;

struct PairTimer {
  Comm& comm;
  const P2pBenchOptions& options;
  HostBuffer& send_buffer;
  HostBuffer& recv_buffer;
  DevicePairTraffic* device = nullptr;  // --impl nccl: the GPU buffers' traffic, timed on the GPU

  Deadline deadline() const { return Deadline::after(options.timeout_s); }

  double device_iteration(int peer, bool initiator, size_t bytes) {
    if (options.test == P2pTest::latency) return device->latency_us(peer, initiator, bytes, deadline());
    const bool both = options.test == P2pTest::bibw;
    return device->window_us(peer, initiator, initiator || both, !initiator || both, options.window, bytes,
                             deadline());
  }

  // One iteration, as seen by `me` talking to `peer`; returns its time in microseconds. Traced (the
  // one extra iteration of --trace), each message's span runs from its posting to its wait's end.
  double iteration(int me, int peer, bool initiator, size_t bytes) {
    if (device) return device_iteration(peer, initiator, bytes);
    Transport& transport = comm.transport();
    TraceRecorder* trace = active_trace();
    const auto traced = [&](std::string_view kind, double posted_us, size_t messages) {
      if (trace)
        trace->add(kind, kind, posted_us, trace->now_us(),
                   trace_arg("peer", peer) + "," + trace_arg("bytes", double(bytes * messages)));
    };
    const double start_us = trace ? trace->now_us() : 0;
    const auto start = Clock::now();
    switch (options.test) {
      case P2pTest::latency: {
        // Ping-pong: the initiator's round trip is two one-way trips.
        if (initiator) {
          auto send = transport.send(peer, send_buffer.data(), bytes, message_tag(kP2pSequence, 0));
          auto recv = transport.recv(peer, recv_buffer.data(), bytes, message_tag(kP2pSequence, 1));
          transport.wait(*send, deadline());
          traced("send", start_us, 1);
          transport.wait(*recv, deadline());
          traced("recv", start_us, 1);
        } else {
          auto recv = transport.recv(peer, recv_buffer.data(), bytes, message_tag(kP2pSequence, 0));
          transport.wait(*recv, deadline());
          traced("recv", start_us, 1);
          const double posted_us = trace ? trace->now_us() : 0;
          auto send = transport.send(peer, send_buffer.data(), bytes, message_tag(kP2pSequence, 1));
          transport.wait(*send, deadline());
          traced("send", posted_us, 1);
        }
        return std::chrono::duration<double, std::micro>(Clock::now() - start).count() / 2;
      }
      case P2pTest::bw:
      case P2pTest::bibw: {
        // A window of messages in flight, then a zero-byte acknowledgement closes the iteration.
        const bool sends = initiator || options.test == P2pTest::bibw;
        const bool receives = !initiator || options.test == P2pTest::bibw;
        std::vector<RequestPtr> requests;
        for (int i = 0; i < options.window; ++i) {
          if (receives)
            requests.push_back(transport.recv(peer, recv_buffer.data(), bytes, message_tag(kP2pSequence, 2 + i)));
          if (sends)
            requests.push_back(transport.send(peer, send_buffer.data(), bytes, message_tag(kP2pSequence, 2 + i)));
        }
        transport.wait_all(requests, deadline());
        if (sends) traced("send", start_us, size_t(options.window));
        if (receives) traced("recv", start_us, size_t(options.window));
        if (initiator) {
          auto ack = transport.recv(peer, nullptr, 0, message_tag(kP2pSequence, 1));
          transport.wait(*ack, deadline());
        } else {
          auto ack = transport.send(peer, nullptr, 0, message_tag(kP2pSequence, 1));
          transport.wait(*ack, deadline());
        }
        (void)me;
        return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
      }
    }
    return 0;
  }
};

}  // namespace

std::string_view p2p_test_name(P2pTest test) {
  switch (test) {
    case P2pTest::latency:
      return "latency";
    case P2pTest::bw:
      return "bw";
    case P2pTest::bibw:
      return "bibw";
  }
  return "?";
}

std::vector<P2pPoint> run_p2p_bench(Comm& comm, const P2pBenchOptions& options, const std::vector<std::string>& argv,
                                    std::ostream& out) {
  const int rank = comm.rank(), ranks = comm.size();
  const std::vector<size_t> sizes =
      size_sweep(options.min_bytes, options.max_bytes, options.step_bytes, options.step_factor);
  const bool on_gpu = options.impl == "nccl";
  // On GPUs the host buffers carry only rank 0's collection of the pairs' times.
  HostBuffer send_buffer(on_gpu ? 1 : options.max_bytes, 1), recv_buffer(on_gpu ? 1 : options.max_bytes, 0);
  std::shared_ptr<DeviceContext> gpu;
  std::unique_ptr<DevicePairTraffic> device_traffic;
  if (on_gpu) {
    gpu = open_device(comm);
    device_traffic = make_nccl_pair_traffic(gpu, options.max_bytes);
  }
  PairTimer timer{comm, options, send_buffer, recv_buffer, device_traffic.get()};
  const std::string transport_name = on_gpu ? "nccl" : comm.transport().name();

  std::vector<std::pair<int, int>> pairs = options.pairs;
  if (options.all_pairs) {
    pairs.clear();
    for (int i = 0; i < ranks; ++i)
      for (int j = i + 1; j < ranks; ++j) pairs.emplace_back(i, j);
  }

  // The traced iterations run apart from the timed ones, so tracing changes no time in the results.
  std::unique_ptr<TraceRecorder> trace;
  if (!options.trace_path.empty()) {
    trace = std::make_unique<TraceRecorder>(rank, ranks, /*schedule_steps=*/true);
    comm.barrier();
    trace->align();
  }

  ResultWriter writer(rank == 0 ? options.json_path : std::string());
  std::vector<P2pPoint> points;
  const bool is_latency = options.test == P2pTest::latency;
  const Wire wire = job_wire(comm);  // collective: every rank's endpoints
  if (rank == 0) {
    out << "# cclab bench p2p --test " << p2p_test_name(options.test) << ": "
        << (on_gpu ? device_traffic->description() + ", GPU memory"
                   : "transport " + comm.transport().name() + ", wire " + wire.short_text())
        << ", " << ranks << " ranks on " << comm.topology().nodes() << " node(s)"
        << (is_latency ? "" : ", window " + std::to_string(options.window)) << "\n";
    out << (is_latency ? "# latency: half the round trip of a ping-pong, us; min/median/max over iterations\n"
                       : "# one iteration: a window of messages then an acknowledgement; bandwidth = bytes / median "
                         "iteration time (bibw: both directions), GB/s with GB = 10^9 B\n");
    out << format_text("#%5s %5s %12s %10s %10s %10s %10s\n", "from", "to", "size(B)", "min_us", "median_us", "max_us",
                       is_latency ? "GB/s" : "bw_GB/s");
  }
  for (const auto& [first, second] : pairs) {
    const bool in_pair = rank == first || rank == second;
    const int peer = rank == first ? second : first;
    for (size_t bytes : sizes) {
      std::vector<double> times;
      comm.barrier();
      if (in_pair) {
        const int warmup =
            std::max(options.warmup, int(std::min<size_t>(options.warmup_bytes / std::max<size_t>(bytes, 1), 1 << 16)));
        for (int i = 0; i < warmup; ++i) timer.iteration(rank, peer, rank == first, bytes);
        for (int i = 0; i < options.iters; ++i) times.push_back(timer.iteration(rank, peer, rank == first, bytes));
        if (trace) {
          const ActiveTrace active(trace.get());
          const double start_us = trace->now_us();
          timer.iteration(rank, peer, rank == first, bytes);
          trace->add("iteration", std::string(p2p_test_name(options.test)) + " " + std::to_string(bytes) + " B",
                     start_us, trace->now_us(), trace_arg("peer", peer));
        }
      }
      if (rank != 0 && rank != first) continue;
      // Rank 0 reports; when it is not in the pair, the pair's first rank hands it the times.
      std::string packed(reinterpret_cast<const char*>(times.data()), times.size() * sizeof(double));
      if (first != 0) {
        if (rank == first) {
          const uint64_t size = packed.size();
          auto header = comm.transport().send(0, &size, sizeof(size), message_tag(kP2pSequence + 1, 0));
          auto body = comm.transport().send(0, packed.data(), packed.size(), message_tag(kP2pSequence + 1, 1));
          comm.transport().wait(*header, timer.deadline());
          comm.transport().wait(*body, timer.deadline());
          continue;
        }
        uint64_t size = 0;
        auto header = comm.transport().recv(first, &size, sizeof(size), message_tag(kP2pSequence + 1, 0));
        comm.transport().wait(*header, timer.deadline());
        packed.resize(size);
        auto body = comm.transport().recv(first, packed.data(), size, message_tag(kP2pSequence + 1, 1));
        comm.transport().wait(*body, timer.deadline());
        times.resize(size / sizeof(double));
        std::memcpy(times.data(), packed.data(), size);
      }
      const Summary summary = summarize(times);
      const double moved =
          double(bytes) * (is_latency ? 1 : double(options.window)) * (options.test == P2pTest::bibw ? 2 : 1);
      P2pPoint point{first, second, bytes, summary.median, summary.median > 0 ? moved / summary.median / 1e3 : 0};
      points.push_back(point);
      out << format_text("%6d %5d %12zu %10.2f %10.2f %10.2f %10.3f\n", first, second, bytes, summary.min,
                         summary.median, summary.max, point.gbps)
          << std::flush;
      nlohmann::json record = base_record("p2p", argv);
      record["test"] = p2p_test_name(options.test);
      record["transport"] = transport_name;
      record["mem"] = on_gpu ? "cuda" : "host";
      if (on_gpu) {
        record["device"] = describe_device(*gpu);
      } else {
        record["wire"] = wire_record(wire);
      }
      record["from"] = first;
      record["to"] = second;
      record["same_node"] = comm.topology().same_node(first, second);
      record["ranks"] = ranks;
      record["bytes"] = bytes;
      record["iters"] = options.iters;
      record["warmup"] = options.warmup;
      record["window"] = is_latency ? 1 : options.window;
      record["time_us"] = {{"min", summary.min}, {"median", summary.median}, {"max", summary.max}};
      if (options.percentiles) record["time_us"]["p99"] = summary.p99;
      record["samples_us"] = samples_for_record(times);
      record[is_latency ? "latency_us" : "bw_gbps"] = is_latency ? summary.median : point.gbps;
      writer.write(record);
    }
  }

  if (rank == 0 && options.all_pairs && ranks > 2) {
    // The matrix at the largest size shows a slow link or a slow node at a glance.
    const size_t largest = sizes.back();
    out << "# " << (is_latency ? "median latency, us" : "bandwidth, GB/s") << " at " << largest
        << " B, row = from, column = to\n#     ";
    for (int j = 0; j < ranks; ++j) out << format_text("%9d", j);
    out << "\n";
    std::map<std::pair<int, int>, double> value;
    for (const P2pPoint& point : points)
      if (point.bytes == largest)
        value[{point.from, point.to}] = value[{point.to, point.from}] = is_latency ? point.median_us : point.gbps;
    for (int i = 0; i < ranks; ++i) {
      out << format_text("%7d", i);
      for (int j = 0; j < ranks; ++j) out << (i == j ? format_text("%9s", "-") : format_text("%9.2f", value[{i, j}]));
      out << "\n";
    }
  }
  if (trace) out << write_trace(&comm.bootstrap(), *trace, options.trace_path, argv) << std::flush;
  return points;
}

}  // namespace cclab
