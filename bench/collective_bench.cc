#include "collective_bench.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <ostream>
#include <sstream>
#include <thread>

#include "calibration.h"
#include "cclab/error.h"
#include "cclab/device.h"
#include "cclab/implementation.h"
#include "cclab/launch.h"
#include "cclab/test_fault.h"
#include "cclab/trace.h"
#include "check.h"
#include "progress.h"
#include "results.h"
#include "size_sweep.h"
#include "statistics.h"
#include "table.h"
#include "transports/mpi/mpi_wire.h"

namespace cclab {
namespace {

// Rounds in which the implementations of a sweep take turns at each size (when there are several),
// from this size on. Below it a block of iterations takes well under a millisecond, too short for
// the machine to drift, and switching implementations would only leave each round's first
// iterations colder (figures in docs/measurements.md).
constexpr int kRounds = 5;
constexpr size_t kRoundsFromBytes = size_t{1} << 20;

// Reduce-scatter and allgather split the array into equal blocks: round down to a multiple of ranks.
size_t array_count(Collective collective, size_t count, int ranks) {
  if (collective == Collective::reduce_scatter || collective == Collective::allgather)
    return count / size_t(ranks) * size_t(ranks);
  return count;
}

double busbw_factor(Collective collective, int ranks) {
  const double n = ranks;
  switch (collective) {
    case Collective::allreduce:
      return 2 * (n - 1) / n;
    case Collective::reduce_scatter:
    case Collective::allgather:
      return (n - 1) / n;
    default:
      return 1;
  }
}

// The implementation `name` on the bench's memory (check_implementation_memory has passed).
std::unique_ptr<Implementation> make_bench_implementation(const CollectiveBenchOptions& options,
                                                          const std::string& name, Comm& comm,
                                                          const CostProfile& profile,
                                                          const std::shared_ptr<DeviceContext>& device) {
  check_implementation_memory(options, name);
  if (!device) return make_implementation(options.collective, name, comm, profile);
  if (name == "nccl") return make_nccl_collective(options.collective, device);
  const Algorithm& algorithm = *find_algorithm(options.collective, name);
  if (options.loopback_fabric) return make_loopback_scheduled(algorithm, device, options.loopback_fabric);
  return make_nccl_scheduled(algorithm, device);
}

// What each rank reports after one (size, implementation): its iteration times and counters.
struct RankSummary {
  std::vector<double> times_us;
  uint64_t wrong = 0, bytes_sent = 0, bytes_received = 0;

  std::string pack() const {
    std::string text(sizeof(uint64_t) * 3 + sizeof(double) * times_us.size(), '\0');
    const uint64_t header[3] = {wrong, bytes_sent, bytes_received};
    std::memcpy(text.data(), header, sizeof(header));
    std::memcpy(text.data() + sizeof(header), times_us.data(), sizeof(double) * times_us.size());
    return text;
  }
  static RankSummary unpack(const std::string& text) {
    RankSummary summary;
    uint64_t header[3];
    std::memcpy(header, text.data(), sizeof(header));
    summary.wrong = header[0];
    summary.bytes_sent = header[1];
    summary.bytes_received = header[2];
    summary.times_us.resize((text.size() - sizeof(header)) / sizeof(double));
    std::memcpy(summary.times_us.data(), text.data() + sizeof(header), sizeof(double) * summary.times_us.size());
    return summary;
  }
};

// What carried a row's bytes: the job's wire for the hand-written algorithms (they run on the
// Comm's transport); a vendor library's own transport at each level otherwise (Gloo: TCP; Open
// MPI: the BTL its settings choose for each pair of ranks).
Wire row_wire(const Implementation& impl, Comm& comm, const Wire& job) {
  const std::string transport = impl.transport();
  if (transport == comm.transport().name()) return job;
  if (transport == "mpi") return open_mpi_job_wire(comm);
  return job.same_at_each_level(transport == "gloo-tcp" ? "tcp" : transport);
}

}  // namespace

void check_implementation_memory(const CollectiveBenchOptions& options, const std::string& name) {
  const bool nccl_impl = name == "nccl";
  if ((nccl_impl || !options.device_transport.empty()) && options.mem != "cuda")
    throw UsageError((nccl_impl ? "--impl nccl" : "--transport " + options.device_transport) +
                     " runs on GPU memory: add --mem cuda");
  if (options.mem != "cuda") return;
  if (nccl_impl) {
    if (options.device_transport == "device-loopback")
      throw UsageError("--impl nccl needs a GPU per rank; device-loopback's ranks share one GPU and run the "
                       "hand-written algorithms");
    return;
  }
  if (!find_algorithm(options.collective, name))
    throw UsageError("--mem cuda: '" + name + "' runs on host memory only (on GPUs: nccl, or a hand-written "
                     "algorithm with --transport nccl or device-loopback)");
  if (options.device_transport.empty())
    throw UsageError("--mem cuda: " + name + " needs --transport nccl or device-loopback: UCX here is built without "
                     "CUDA and cannot reach GPU memory");
}

bool run_collective_bench(Comm& comm, const CollectiveBenchOptions& options, const std::vector<std::string>& argv,
                          std::ostream& out) {
  const int rank = comm.rank(), ranks = comm.size();
  const size_t element = dtype_size(options.dtype);
  const std::vector<size_t> sizes =
      size_sweep(options.min_bytes, options.max_bytes, options.step_bytes, options.step_factor, element);

  // GPU memory: this rank's device; every array lives there and device implementations run on it.
  // Over device-loopback every rank is a thread on the one GPU the process uses first.
  const std::shared_ptr<DeviceContext> device =
      options.mem != "cuda"      ? nullptr
      : options.loopback_fabric ? open_device(comm.bootstrap(), comm.topology(), comm.timeout_s(), /*device=*/0)
                                : open_device(comm);
  std::unique_ptr<MemorySpace> memory = device                   ? device_memory(device)
                                        : options.mem == "shared" ? node_shared_host_memory(comm)
                                                                  : host_memory();
  if (!memory) {
    if (rank == 0)
      out << "# --mem shared: " << comm.why_no_peer_memory() << "; the arrays are private host memory\n";
    memory = host_memory();
  }

  // The cost model behind `auto` and the pred_us column: measured on this job unless given. It
  // describes the host transports, so GPU runs neither measure nor use one.
  std::ostringstream model_line;
  const Wire wire = job_wire(comm);  // collective: every rank's endpoints
  CostProfile profile;
  if (device) {
    model_line << "# device: " << describe_device(*device)
               << (options.loopback_fabric ? " shared by the " + std::to_string(ranks) +
                                                 " ranks (device-loopback: threads of one process, each message a "
                                                 "cudaMemcpyAsync between their buffers)"
                                           : " (rank 0); NCCL " + nccl_version())
               << "; no cost model for GPU memory (pred_us empty)\n";
    if (options.graph_replays > 0)
      model_line << "# cuda graph: each size's " << options.iters << " timed calls captured once, replayed "
                 << options.graph_replays << " times; a sample is one replay's time / " << options.iters << "\n";
  } else if (!options.profile_path.empty()) {
    profile = load_profile(options.profile_path);
    if (const std::string warning = profile_wire_mismatch(profile.wire, wire, options.profile_path);
        rank == 0 && !warning.empty())
      std::cerr << warning << "\n";
  } else if (ranks > 1) {
    ProgressLine calibrating(rank == 0);  // cleared when the calibration is done
    calibrating.show("measuring the cost model on this job (--profile FILE skips it)");
    CalibrationOptions calibration;
    calibration.timeout_s = options.timeout_s;
    calibration.iters = 10;  // a quick estimate; bench p2p --fit measures longer
    profile = calibrate_cost_profile(comm, calibration);
    profile.wire = wire;
  }
  if (!wire.empty())
    model_line << "# wire: intra-node " << (wire.intra.empty() ? "-" : wire.intra) << ", inter-node "
               << (wire.inter.empty() ? "-" : wire.inter)
               << " (the transports of UCX's endpoints, or the transport's name; -: no such pair of ranks)\n";
  if (!device && (!options.profile_path.empty() || ranks > 1))
    model_line << "# cost model: " << (options.verbose ? describe_profile_in_full(profile) : describe_profile(profile))
               << (options.profile_path.empty() ? "" : ", from " + options.profile_path) << "\n";

  if (ranks == 1) model_line << "# warning: one rank: the collectives move no data, only local copies\n";
  if (this_rank_placement().oversubscribed)
    model_line << "# warning: more ranks than cores on a host: the ranks take turns on the cores, and times show it\n";

  // A profile measured on this job keeps its sharing costs current through the sweep.
  std::optional<SharingCostTracker> sharing;
  if (!device && options.profile_path.empty() && ranks > 1) sharing.emplace(profile);

  std::vector<std::unique_ptr<Implementation>> impls;
  std::vector<std::unique_ptr<IterationClock>> clocks;
  std::vector<Wire> wires;  // what carries each implementation's bytes, for its records
  for (const std::string& name : options.impls) {
    impls.push_back(make_bench_implementation(options, name, comm, profile, device));
    clocks.push_back(impls.back()->clock());
    wires.push_back(row_wire(*impls.back(), comm, wire));
  }

  CollectiveArgs args;
  args.collective = options.collective;
  args.dtype = options.dtype;
  args.op = options.op;
  args.root = options.root;
  args.inplace = options.inplace;
  args.segment_bytes = options.segment_bytes;
  args.segments_in_flight = options.segments_in_flight;

  // Refuse before the sweep if the largest size cannot fit on every rank of this host.
  const size_t largest = sizes.empty() ? 0 : sizes.back();
  args.count = array_count(options.collective, largest / element, ranks);
  const BufferCounts largest_counts = buffer_counts(options.collective, args.count, ranks);
  size_t scratch = 0;
  for (const auto& impl : impls) scratch = std::max(scratch, impl->scratch_bytes(args));
  // In place there is one buffer, as large as the larger of input and output.
  const size_t data_elements = options.inplace ? std::max(largest_counts.input, largest_counts.output)
                                               : largest_counts.input + largest_counts.output;
  const size_t per_rank = data_elements * element + scratch;
  const size_t ranks_here = options.loopback_fabric           ? size_t(ranks)  // every rank on one GPU
                            : memory->shared_by_node_ranks() ? size_t(comm.topology().ranks_on_node_of(rank))
                                                             : 1;
  const size_t available = memory->available_bytes();
  const bool fits = per_rank * ranks_here < available / 10 * 9;
  for (const std::string& verdict : comm.allgather(fits ? "ok" : "no"))
    if (verdict != "ok")
      throw UsageError("the largest size (" + std::to_string(largest) + " B) needs " + std::to_string(per_rank >> 20) +
                       " MiB per rank x " + std::to_string(ranks_here) + " ranks on a " +
                       (device ? "GPU" : "host") + " with " + std::to_string(available >> 20) +
                       " MiB available; lower -e/--maxbytes");

  const std::shared_ptr<std::byte> input_buffer =
      memory->allocate(options.inplace ? data_elements * element : largest_counts.input * element);
  const std::shared_ptr<std::byte> output_buffer =
      memory->allocate(options.inplace ? 0 : largest_counts.output * element);
  // Check values are written and read on the host: in place where the host reaches the arrays,
  // through this copy where it does not (a GPU's).
  std::vector<std::byte> staging(memory->host_accessible() ? 0 : std::max(largest_counts.input, largest_counts.output) *
                                                                      element);
  auto fill_input = [&](std::byte* input, size_t count) {
    if (memory->host_accessible()) return fill_check_input(input, count, options.dtype, options.op, rank);
    fill_check_input(staging.data(), count, options.dtype, options.op, rank);
    memory->copy_in(input, staging.data(), count * element);
  };
  auto read_output = [&](std::byte* output, size_t count) {
    if (memory->host_accessible()) return output;
    memory->copy_out(staging.data(), output, count * element);
    return staging.data();
  };

  // The traced calls run apart from the timed ones, so tracing changes no time in the results.
  std::unique_ptr<TraceRecorder> trace;
  if (!options.trace_path.empty()) {
    trace = std::make_unique<TraceRecorder>(rank, ranks, /*schedule_steps=*/true);
    comm.barrier();
    trace->align();
  }

  ResultWriter writer(rank == 0 ? options.json_path : std::string());
  const Placement placement = this_rank_placement();
  const std::string launcher = comm.bootstrap().launcher();
  size_t records_done = 0;
  bool header_printed = false;
  if (rank == 0 && !device && (!options.profile_path.empty() || ranks > 1)) {
    nlohmann::json record = base_record("profile", argv);
    record["source"] = options.profile_path.empty() ? "calibrated on this job" : options.profile_path;
    record["profile"] = nlohmann::json::parse(profile_to_json(profile));
    writer.write(record);
  }
  // Rank 0's tally for the closing lines: wrong elements, and busbw per implementation.
  uint64_t wrong_elements = 0;
  std::vector<double> busbw_sums(impls.size(), 0);
  std::vector<size_t> busbw_sizes(impls.size(), 0);

  // The status line on a terminal: how far the sweep is, each size weighing its bytes plus a
  // fixed part for the latency of small ones.
  ProgressLine progress(rank == 0);
  double weight_total = 0, weight_done = 0;
  for (size_t requested : sizes) weight_total += double(requested + 65536) * double(impls.size());
  size_t row = 0;

  const int rounds_of_turns = std::min(options.iters, kRounds);
  for (size_t requested : sizes) {
    args.count = array_count(options.collective, requested / element, ranks);
    const size_t bytes = args.count * element;
    const BufferCounts counts = buffer_counts(options.collective, args.count, ranks);
    // In place, input and output are windows of one buffer at NCCL's offsets.
    const InplaceOffsets offsets =
        options.inplace ? inplace_offsets(options.collective, args.count, ranks, rank) : InplaceOffsets{};
    std::byte* input = input_buffer.get() + offsets.input * element;
    std::byte* output = (options.inplace ? input_buffer.get() : output_buffer.get()) + offsets.output * element;
    // The cores may have moved since the last size (auto selects with the refreshed profile).
    if (sharing) sharing->refresh(comm, profile, options.timeout_s);
    for (auto& impl : impls) impl->prepare(args);

    // Implementations take turns at each size, in rounds of a few iterations each, so drifts of
    // the machine (a VM's cores can move between dies every few seconds) hit them alike. A round
    // starts with one untimed iteration (the other implementations ran in between), the first
    // with the warm-up iterations.
    // A graph holds all timed iterations of a size, so its replays cannot take turns in rounds.
    const int rounds =
        impls.size() > 1 && bytes >= kRoundsFromBytes && options.graph_replays == 0 ? rounds_of_turns : 1;
    std::vector<RankSummary> summaries(impls.size());
    for (int round = 0; round < rounds; ++round) {
      const int iters = options.iters / rounds + (round < options.iters % rounds ? 1 : 0);
      for (size_t which = 0; which < impls.size(); ++which) {
        Implementation& impl = *impls[which];
        RankSummary& summary = summaries[which];
        IterationClock& clock = *clocks[which];
        progress.show(std::string(collective_name(options.collective)) + " " + std::to_string(bytes) + " B, " +
                          impl.name() + " (" + std::to_string(row + which + 1) + "/" +
                          std::to_string(sizes.size() * impls.size()) + ")",
                      weight_done / weight_total);
        weight_done += double(requested + 65536) / rounds;
        if (round == 0) fill_input(input, counts.input);
        comm.barrier();
        for (int i = 0; i < (round == 0 ? options.warmup : 1); ++i)
          impl.run(input, output, Deadline::after(options.timeout_s));
        impl.wait(Deadline::after(options.timeout_s));
        comm.barrier();
        const TrafficCounters* counters = impl.traffic();  // null for vendor code: its traffic bypasses ours
        const TrafficCounters before = counters ? *counters : TrafficCounters();
        if (options.graph_replays > 0) {
          const auto graph = impl.capture(input, output, iters, Deadline::after(options.timeout_s));
          if (!graph) throw UsageError("--cuda-graph: " + impl.name() + " cannot be captured into a CUDA graph");
          for (int replay = 0; replay < options.graph_replays; ++replay) {
            comm.barrier();
            summary.times_us.push_back(graph->replay_us(Deadline::after(options.timeout_s)) / iters);
          }
        } else {
          for (int i = 0; i < iters; ++i) {
            clock.start();
            impl.run(input, output, Deadline::after(options.timeout_s));
            clock.stop();
          }
          impl.wait(Deadline::after(options.timeout_s));
          for (double us : clock.take_times_us(Deadline::after(options.timeout_s))) summary.times_us.push_back(us);
        }
        if (!counters) continue;
        const TrafficCounters& after = *impl.traffic();
        summary.bytes_sent += after.total_bytes_sent() - before.total_bytes_sent();
        summary.bytes_received += after.total_bytes_received() - before.total_bytes_received();
      }
    }

    for (size_t which = 0; which < impls.size(); ++which) {
      Implementation* impl = impls[which].get();
      RankSummary& summary = summaries[which];
      if (options.iters > 0) {  // per timed iteration
        summary.bytes_sent /= uint64_t(options.iters);
        summary.bytes_received /= uint64_t(options.iters);
      }
      if (options.check) {
        // Zero the output first (inputs are never 0), so an element nobody wrote is caught.
        if (!options.inplace) memory->zero(output, counts.output * element);
        fill_input(input, counts.input);
        impl->run(input, output, Deadline::after(options.timeout_s));
        impl->wait(Deadline::after(options.timeout_s));
        std::byte* result = read_output(output, counts.output);
        if (fault_makes_results_wrong(rank) && counts.output > 0) result[0] ^= std::byte{0x40};  // test hook
        summary.wrong =
            count_wrong(options.collective, result, args.count, options.dtype, options.op, ranks, rank, options.root);
      }

      if (trace) {
        comm.barrier();
        const ActiveTrace active(trace.get());
        const double start_us = trace->now_us();
        impl->run(input, output, Deadline::after(options.timeout_s));
        impl->wait(Deadline::after(options.timeout_s));
        trace->add("collective", std::string(collective_name(options.collective)) + " " + impl->name(), start_us,
                   trace->now_us(), trace_arg("bytes", double(bytes)));
      }

      const std::vector<std::string> gathered = comm.allgather(summary.pack());
      if (rank == 0) {
        std::vector<double> slowest(summary.times_us.size(), 0);
        uint64_t wrong = 0, sent = 0, received = 0;
        for (const std::string& text : gathered) {
          const RankSummary other = RankSummary::unpack(text);
          for (size_t i = 0; i < slowest.size() && i < other.times_us.size(); ++i)
            slowest[i] = std::max(slowest[i], other.times_us[i]);
          wrong += other.wrong;
          sent = std::max(sent, other.bytes_sent);
          received = std::max(received, other.bytes_received);
        }
        const Summary summary_of_slowest = summarize(slowest);
        const double median = summary_of_slowest.median;
        const double algbw = median > 0 ? double(bytes) / median / 1e3 : 0;  // B/us = 10^6 B/s

        nlohmann::json record = base_record("collective", argv);
        record["collective"] = collective_name(options.collective);
        record["impl"] = impl->name();
        record["transport"] = impl->transport();
        record["wire"] = wire_record(wires[which]);
        record["mem"] = memory->name();
        if (device) record["device"] = describe_device(*device);
        record["dtype"] = dtype_name(options.dtype);
        record["op"] = op_name(options.op);
        record["root"] = options.root;
        record["ranks"] = ranks;
        record["nodes"] = comm.topology().nodes();
        record["bytes"] = bytes;
        record["count"] = args.count;
        record["iters"] = options.iters;
        record["warmup"] = options.warmup;
        record["rounds"] = rounds;
        if (options.graph_replays > 0) record["cuda_graph_replays"] = options.graph_replays;
        if (impls.size() > 1) record["turns"] = {{"from_bytes", kRoundsFromBytes}, {"rounds", rounds_of_turns}};
        record["inplace"] = options.inplace;
        record["segment_bytes"] = options.segment_bytes;
        record["launcher"] = launcher;
        record["binding"] = placement.binding;
        record["time_us"] = {{"min", summary_of_slowest.min}, {"median", median}, {"max", summary_of_slowest.max}};
        if (options.percentiles) record["time_us"]["p99"] = summary_of_slowest.p99;
        record["samples_us"] = samples_for_record(slowest);
        record["algbw_gbps"] = algbw;
        record["busbw_gbps"] = algbw * busbw_factor(options.collective, ranks);
        record["wrong"] = options.check ? nlohmann::json(wrong) : nlohmann::json(nullptr);
        const auto predicted = impl->predicted_traffic();
        record["sent_bytes_per_rank"] = impl->traffic() ? nlohmann::json(sent) : nlohmann::json(nullptr);
        record["recv_bytes_per_rank"] = impl->traffic() ? nlohmann::json(received) : nlohmann::json(nullptr);
        record["predicted_sent_bytes_per_rank"] =
            predicted ? nlohmann::json(predicted->max_bytes_sent) : nlohmann::json(nullptr);
        record["predicted_recv_bytes_per_rank"] =
            predicted ? nlohmann::json(predicted->max_bytes_received) : nlohmann::json(nullptr);
        const std::optional<double> predicted_us = impl->predicted_time_us(profile);
        record["pred_us"] = predicted_us ? nlohmann::json(*predicted_us) : nlohmann::json(nullptr);
        if (const std::optional<AutoChoice> choice = impl->choice()) {
          record["selected"] = choice->algorithm;
          record["selected_by"] = choice->by;
          if (!choice->probe_us.empty()) {
            record["probe_us"] = nlohmann::json::object();
            for (const auto& [name, us] : choice->probe_us) record["probe_us"][name] = us;
          }
        }

        writer.write(record);
        wrong_elements += wrong;
        busbw_sums[which] += record["busbw_gbps"].get<double>();
        ++busbw_sizes[which];
        progress.clear();
        if (!header_printed) out << model_line.str() << collective_table_header(record, options.percentiles);
        header_printed = true;
        out << collective_table_row(record, options.percentiles) << std::flush;
      }
      maybe_inject_fault(rank, ++records_done, "CCLAB_FAULT_AFTER_RECORDS");
    }
    row += impls.size();
  }
  progress.clear();

  // Closing lines as nccl-tests prints them, and the verdict every rank returns.
  bool passed = true;
  if (rank == 0) {
    nlohmann::json record = base_record("summary", argv);
    record["wrong"] = options.check ? nlohmann::json(wrong_elements) : nlohmann::json(nullptr);
    if (options.check) {
      out << "# wrong elements: " << wrong_elements << (wrong_elements == 0 ? " OK" : " FAILED") << "\n";
      passed = wrong_elements == 0;
    } else {
      out << "# wrong elements: not checked (--check checks every result)\n";
    }
    std::string averages, below;
    record["average_busbw_gbps"] = nlohmann::json::object();
    for (size_t which = 0; which < impls.size(); ++which) {
      const double average = busbw_sizes[which] ? busbw_sums[which] / double(busbw_sizes[which]) : 0;
      record["average_busbw_gbps"][impls[which]->name()] = average;
      char text[96];
      std::snprintf(text, sizeof text, "%s%s %.3f GB/s", averages.empty() ? "" : ", ", impls[which]->name().c_str(),
                    average);
      averages += text;
      if (options.min_busbw_gbps > 0 && average < options.min_busbw_gbps)
        below += (below.empty() ? "" : ", ") + impls[which]->name();
    }
    out << "# average busbw over the sizes: " << averages << "\n";
    if (options.min_busbw_gbps > 0) {
      record["min_busbw_gbps"] = options.min_busbw_gbps;
      out << "# --min-busbw " << options.min_busbw_gbps
          << " GB/s: " << (below.empty() ? "OK" : below + " below, FAILED") << "\n";
      passed = passed && below.empty();
    }
    record["passed"] = passed;
    writer.write(record);
    out << std::flush;
  }
  if (trace) out << write_trace(&comm.bootstrap(), *trace, options.trace_path, argv) << std::flush;
  return comm.allgather(passed ? "passed" : "failed")[0] == "passed";
}

}  // namespace cclab
