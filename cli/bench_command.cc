// `cclab bench <collective>|p2p`: nccl-tests and OSU flags (DESIGN 3.4), run as a job of N ranks.
#include <algorithm>
#include <cmath>
#include <iostream>
#include <limits>
#include <memory>
#include <sstream>

#include "calibration.h"
#include "cclab/device.h"
#include "cclab/error.h"
#include "cclab/launch.h"
#include "cclab/implementation.h"
#include "collective_bench.h"
#include "commands.h"
#include "job.h"
#include "flag_checks.h"
#include "p2p_bench.h"

namespace cclab {

namespace {

// Bounds: a sweep of at most this many sizes, each timed at most this many times.
constexpr size_t kMostSizes = 10000;
constexpr double kMostIterations = 1e8;

// Size sweep flags shared by the collective and p2p benchmarks.
struct SweepFlags {
  std::string min_bytes = "8", max_bytes = "64M", step_bytes;
  double step_factor = 2;
  int iters = 20, warmup = 5;
};

void add_sweep_flags(CLI::App& command, SweepFlags& flags) {
  command.add_option("-b,--minbytes", flags.min_bytes, "Smallest message size (K, M, G = 1024^1..3)")
      ->capture_default_str();
  command.add_option("-e,--maxbytes", flags.max_bytes, "Largest message size")->capture_default_str();
  command.add_option("-f,--stepfactor", flags.step_factor, "Multiply the size by this factor each step (1: step by -i)")
      ->capture_default_str();
  command.add_option("-i,--stepbytes", flags.step_bytes, "Add this many bytes each step instead of -f (with -f 1: 1M)");
  command.add_option("--iters", flags.iters, "Timed iterations per size and implementation")
      ->capture_default_str()
      ->check(in_range(1, kMostIterations));
  command.add_option("-w,--warmup", flags.warmup, "Untimed iterations before timing")
      ->capture_default_str()
      ->check(in_range(0, kMostIterations));
}

struct Sweep {
  size_t min_bytes, max_bytes, step_bytes;
  double step_factor;
};

Sweep validate_sweep(const SweepFlags& flags) {
  Sweep sweep{parse_size(flags.min_bytes), parse_size(flags.max_bytes), 0, flags.step_factor};
  if (sweep.min_bytes > sweep.max_bytes)
    throw UsageError("-b/--minbytes (" + flags.min_bytes + ") is larger than -e/--maxbytes (" + flags.max_bytes + ")");
  sweep.step_bytes = flags.step_bytes.empty() ? 0 : parse_size(flags.step_bytes);
  if (!flags.step_bytes.empty() && sweep.step_bytes == 0) throw UsageError("-i/--stepbytes must be positive");
  if (!std::isfinite(flags.step_factor) || flags.step_factor < 1)
    throw UsageError("-f/--stepfactor must be a number of at least 1");
  // As nccl-tests: a factor of 1 means no factor, and the sizes step by -i (1M unless given).
  if (flags.step_factor == 1 && sweep.step_bytes == 0) sweep.step_bytes = size_t{1} << 20;
  const double sizes = sweep.step_bytes > 0 ? double(sweep.max_bytes - sweep.min_bytes) / double(sweep.step_bytes)
                       : flags.step_factor > 1
                           ? std::log(double(sweep.max_bytes) / double(std::max<size_t>(sweep.min_bytes, 1))) /
                                 std::log(flags.step_factor)
                           : 0;
  if (sizes + 1 > double(kMostSizes))
    throw UsageError("-b " + flags.min_bytes + " to -e " + flags.max_bytes + " in these steps makes about " +
                     std::to_string(size_t(sizes + 1)) + " sizes; at most " + std::to_string(kMostSizes) +
                     " (a larger -f or -i)");
  return sweep;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> items;
  std::stringstream stream(text);
  for (std::string item; std::getline(stream, item, ',');)
    if (!item.empty()) items.push_back(item);
  return items;
}

struct CollectiveFlags {
  JobFlags job;
  SweepFlags sweep;
  std::string dtype = "f32", op = "sum", impls, segment = "1M";
  bool impls_given = false;  // --impl '' names no implementation: refused, not read as the default
  CollectiveBenchOptions options;
};

// --mem cuda on this machine: a usable GPU, and for NCCL (its collectives, or --transport nccl) an
// NCCL that loads and a GPU for each rank a local launch starts (NCCL refuses two ranks on one GPU).
// device-loopback's ranks share one GPU and need no NCCL.
void check_gpus_serve(const JobFlags& job, bool one_gpu_for_all = false) {
  if (const std::string why = cuda_unavailable_reason(); !why.empty()) throw UsageError("--mem cuda: " + why);
  if (one_gpu_for_all) return;
  if (const std::string why = nccl_unavailable_reason(); !why.empty()) throw UsageError("--mem cuda: NCCL: " + why);
  if (detect_launch() == LaunchKind::none && job.ranks > cuda_device_count())
    throw UsageError("--mem cuda: -n " + std::to_string(job.ranks) + " ranks but " +
                     std::to_string(cuda_device_count()) + " GPU(s) here: each rank needs its own (NCCL " +
                     nccl_version() + " refuses two ranks on one GPU; --transport device-loopback shares one)");
}

// --mem and the device transports: GPU requests are refused here, before any rank starts, when this
// machine or build cannot serve them. Hand-written algorithms on a GPU keep a host transport
// (--transport's default) for the control traffic.
void validate_memory(CollectiveFlags& flags) {
  CollectiveBenchOptions& o = flags.options;
  if (o.mem != "shared" && o.mem != "host" && o.mem != "cuda")
    throw UsageError("--mem takes shared, host or cuda, not '" + o.mem + "'");
  if (o.graph_replays > 0 && o.mem != "cuda")
    throw UsageError("--cuda-graph captures GPU work: it needs --mem cuda (with --impl nccl or --transport nccl)");
  if (flags.job.transport == "nccl" || flags.job.transport == "device-loopback") {
    o.device_transport = flags.job.transport;
    flags.job.transport = "ucx";
  }
  const bool loopback = o.device_transport == "device-loopback";
  if (loopback && o.graph_replays > 0)
    throw UsageError("--cuda-graph: device-loopback's messages wait on the host for their peers, which a capture of "
                     "one stream cannot hold (--transport nccl can be captured)");
  if (loopback && !flags.job.inter_transport.empty())
    throw UsageError("--inter-transport: device-loopback's ranks are threads sharing one GPU; there is no network");
  if (o.mem == "cuda") check_gpus_serve(flags.job, loopback);
  for (const std::string& name : o.impls) check_implementation_memory(o, name);
}

// Checks everything that can be checked before any rank starts, so bad input costs nothing.
void validate(CollectiveFlags& flags, Collective collective) {
  CollectiveBenchOptions& o = flags.options;
  o.collective = collective;
  const Sweep sweep = validate_sweep(flags.sweep);
  o.min_bytes = sweep.min_bytes;
  o.max_bytes = sweep.max_bytes;
  o.step_bytes = sweep.step_bytes;
  o.step_factor = sweep.step_factor;
  o.iters = flags.sweep.iters;
  o.warmup = flags.sweep.warmup;
  o.timeout_s = flags.job.timeout_s;
  const auto dtype = parse_dtype(flags.dtype);
  if (!dtype) throw UsageError("unknown datatype '" + flags.dtype + "' (f32 f64 f16 bf16 i32 i64 u8)");
  o.dtype = *dtype;
  const auto op = parse_op(flags.op);
  if (!op) throw UsageError("unknown reduction op '" + flags.op + "' (sum prod min max avg)");
  o.op = *op;
  o.impls = split_list(flags.impls);
  if (!flags.impls_given)  // default: every hand-written algorithm of this collective
    for (const Algorithm& algorithm : algorithm_registry())
      if (algorithm.collective == collective) o.impls.push_back(algorithm.name);
  if (o.impls.empty()) throw UsageError("--impl needs at least one implementation (see cclab info)");
  const auto vendors = vendor_implementation_names(collective);
  for (const std::string& name : o.impls) {
    if (name == "auto" || name == "nccl" || find_algorithm(collective, name) ||
        std::find(vendors.begin(), vendors.end(), name) != vendors.end())
      continue;
    std::string known;
    for (const Algorithm& algorithm : algorithm_registry())
      if (algorithm.collective == collective) known += (known.empty() ? "" : ", ") + algorithm.name;
    for (const std::string& vendor : vendors) known += ", " + vendor;
    known += ", nccl (--mem cuda), auto";
    throw UsageError("unknown implementation '" + name + "' for " + std::string(collective_name(collective)) +
                     " (this build has: " + known + ")");
  }
  validate_memory(flags);
  validate_job_flags(flags.job);
  if (!o.json_path.empty()) check_output_file("--json", o.json_path);
  if (!o.trace_path.empty()) check_output_file("--trace", o.trace_path);
  if (!o.profile_path.empty()) load_profile(o.profile_path);  // a bad profile is refused before any rank starts
  o.segment_bytes = parse_size(flags.segment);
  if (o.segment_bytes == 0) throw UsageError("--segment must be positive");
  if (o.max_bytes / dtype_size(o.dtype) > size_t(INT32_MAX))
    throw UsageError("-e/--maxbytes allows more than 2^31-1 elements, which MPI counts cannot express");
  const bool rooted = collective == Collective::broadcast || collective == Collective::reduce;
  if (o.root != 0 && !rooted)
    throw UsageError("-r/--root applies to broadcast and reduce; " + std::string(collective_name(collective)) +
                     " has no root");
  if (o.root < 0 || (flags.job.ranks > 0 && o.root >= flags.job.ranks))
    throw UsageError("-r/--root " + std::to_string(o.root) + " is not a rank of the job");
}

void add_collective_commands(CLI::App& bench, const std::vector<std::string>& argv,
                             std::vector<std::pair<CLI::App*, CommandAction>>& actions) {
  for (Collective collective : {Collective::allreduce, Collective::broadcast, Collective::reduce,
                                Collective::reduce_scatter, Collective::allgather}) {
    auto flags = std::make_shared<CollectiveFlags>();
    const std::string name(collective_name(collective));
    CLI::App* sub = bench.add_subcommand(name, "Sweep message sizes of " + name + " over the chosen implementations");
    CollectiveBenchOptions& o = flags->options;
    add_job_flags(*sub, flags->job);
    add_sweep_flags(*sub, flags->sweep);
    sub->add_option("-d,--datatype", flags->dtype, "f32 f64 f16 bf16 i32 i64 u8")->capture_default_str();
    sub->add_option("-o,--op", flags->op, "sum prod min max avg")->capture_default_str();
    sub->add_option("-r,--root", o.root, "Root rank of broadcast and reduce")
        ->capture_default_str()
        ->check(in_range(0, 1 << 20));
    sub->add_flag("-c,--check", o.check, "Check every result and count wrong elements");
    sub->add_option("--impl", flags->impls,
                    "Comma-separated implementations (see cclab info); default: every hand-written one");
    sub->add_option("--json", o.json_path, "Append one JSON record per (size, impl) to this file");
    sub->add_option("--trace", o.trace_path,
                    "Write Chrome trace events of one extra call per (size, impl): each send, receive and reduce");
    sub->add_flag("--inplace", o.inplace, "Run the in-place form (NCCL's buffer layout)");
    sub->add_option("--mem", o.mem,
                    "Where the arrays live: shared (host memory the node's ranks read in place), host "
                    "(private), or cuda (local rank i on GPU i; for --impl nccl and --transport nccl)")
        ->capture_default_str();
    sub->add_option("-G,--cuda-graph", o.graph_replays,
                    "With --mem cuda: capture each size's timed calls once as a CUDA graph and replay it N "
                    "times (nccl-tests' -G); one sample per replay")
        ->check(CLI::Range(1, 1000));
    sub->add_flag("--percentiles", o.percentiles, "Also report the 99th percentile time");
    sub->add_flag("-v,--verbose", o.verbose, "Print every figure of the cost model, not the short line");
    sub->add_option("--min-busbw", o.min_busbw_gbps,
                    "Fail the run (exit 1) when an implementation's average busbw is below this many GB/s")
        ->check(in_range(0, 1e6, false));
    sub->add_option("--profile", o.profile_path,
                    "Cost model profile (from bench p2p --fit) for auto and pred_us; default: measure it first");
    sub->add_option("--segment", flags->segment, "Pipelining segment of segmented algorithms")->capture_default_str();
    sub->add_option("--segments-in-flight", o.segments_in_flight, "Receive slots per segmented algorithm")
        ->capture_default_str()
        ->check(CLI::Range(1, 1024));
    actions.emplace_back(sub, [flags, collective, argv, sub]() -> int {
      flags->impls_given = sub->count("--impl") > 0;
      validate(*flags, collective);
      bool needs_mpirun = false;
      for (const std::string& name : flags->options.impls) needs_mpirun |= needs_mpi_launch(name);
      auto body = [flags, argv](Comm& comm) {
        if (flags->options.root >= comm.size())
          throw UsageError("-r/--root " + std::to_string(flags->options.root) + " is not a rank of the job (" +
                           std::to_string(comm.size()) + " ranks)");
        return run_collective_bench(comm, flags->options, argv, std::cout);
      };
      if (flags->options.device_transport != "device-loopback") return run_job(flags->job, argv, needs_mpirun, body);
      flags->options.loopback_fabric = make_loopback_fabric(std::max(flags->job.ranks, 1));
      return run_job_in_threads(flags->job, body);
    });
  }
}

struct P2pFlags {
  JobFlags job;
  SweepFlags sweep{"8", "4M", "", 2, 100, 10};
  std::string test = "latency", pairs = "0,1", profile_path = "results/profile.json";
  bool fit = false, verbose = false;
  std::string mem = "host";
  P2pBenchOptions options;
};

// bench p2p on GPUs: NCCL between GPU buffers, refused before any rank starts where it cannot run.
void validate_p2p_memory(const P2pFlags& flags) {
  const std::string& impl = flags.options.impl;
  if (impl != "transport" && impl != "nccl") throw UsageError("p2p --impl takes transport or nccl, not '" + impl + "'");
  if (flags.mem != "host" && flags.mem != "cuda") throw UsageError("--mem takes host or cuda, not '" + flags.mem + "'");
  if (impl == "nccl" && flags.mem != "cuda") throw UsageError("--impl nccl runs on GPU memory: add --mem cuda");
  if (flags.mem == "cuda" && impl != "nccl")
    throw UsageError("p2p --mem cuda needs --impl nccl: UCX here is built without CUDA and cannot address GPU memory");
  if (flags.mem != "cuda") return;
  if (flags.fit) throw UsageError("--fit measures the host transport's cost model: give --impl nccl without it");
  check_gpus_serve(flags.job);
}

void add_p2p_command(CLI::App& bench, const std::vector<std::string>& argv,
                     std::vector<std::pair<CLI::App*, CommandAction>>& actions) {
  auto flags = std::make_shared<P2pFlags>();
  CLI::App* sub = bench.add_subcommand("p2p", "Point-to-point latency or bandwidth (osu_latency, osu_bw, osu_bibw)");
  add_job_flags(*sub, flags->job);
  add_sweep_flags(*sub, flags->sweep);
  sub->add_option("--test", flags->test, "latency, bw or bibw")->capture_default_str();
  sub->add_option("--window", flags->options.window, "Messages in flight per bw/bibw iteration")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  sub->add_option("--pairs", flags->pairs, "0,1 (ranks 0 and 1) or all (every pair, and a matrix)")
      ->capture_default_str();
  sub->add_option("--json", flags->options.json_path, "Append one JSON record per (pair, size) to this file");
  sub->add_option("--trace", flags->options.trace_path,
                  "Write Chrome trace events of one extra iteration per (pair, size): every message's span");
  sub->add_flag("--percentiles", flags->options.percentiles, "Also record the 99th percentile time");
  sub->add_flag("--fit", flags->fit,
                "Fit the cost model (alpha, beta per level; gamma) on this job and save it to --profile");
  sub->add_option("--profile", flags->profile_path, "Where --fit writes the profile")->capture_default_str();
  sub->add_flag("-v,--verbose", flags->verbose, "With --fit: print every figure of the cost model");
  sub->add_option("--impl", flags->options.impl,
                  "transport (the job's --transport, host memory) or nccl (ncclSend/ncclRecv, with --mem cuda)")
      ->capture_default_str();
  sub->add_option("--mem", flags->mem, "Where the buffers live: host, or cuda (local rank i on GPU i; --impl nccl)")
      ->capture_default_str();
  actions.emplace_back(sub, [flags, argv]() -> int {
    validate_job_flags(flags->job);
    validate_p2p_memory(*flags);
    P2pBenchOptions& o = flags->options;
    const Sweep sweep = validate_sweep(flags->sweep);
    o.min_bytes = sweep.min_bytes;
    o.max_bytes = sweep.max_bytes;
    o.step_bytes = sweep.step_bytes;
    o.step_factor = sweep.step_factor;
    o.iters = flags->sweep.iters;
    o.warmup = flags->sweep.warmup;
    o.timeout_s = flags->job.timeout_s;
    if (flags->test == "latency") o.test = P2pTest::latency;
    else if (flags->test == "bw") o.test = P2pTest::bw;
    else if (flags->test == "bibw") o.test = P2pTest::bibw;
    else throw UsageError("--test takes latency, bw or bibw, not '" + flags->test + "'");
    if (flags->pairs != "all" && flags->pairs != "0,1") throw UsageError("--pairs takes 0,1 or all");
    o.all_pairs = flags->pairs == "all";
    if (flags->job.ranks == 1) throw UsageError("p2p needs at least 2 ranks");
    if (!o.json_path.empty()) check_output_file("--json", o.json_path);
    if (!o.trace_path.empty()) check_output_file("--trace", o.trace_path);
    if (flags->fit && !o.trace_path.empty()) throw UsageError("--fit measures the cost model: give --trace without it");
    if (flags->fit) check_output_file("--profile", flags->profile_path);
    return run_job(flags->job, argv, false, [flags, argv](Comm& comm) {
      if (comm.size() < 2) throw UsageError("p2p needs at least 2 ranks");
      if (flags->fit) {
        CalibrationOptions calibration;
        calibration.max_bytes = flags->options.max_bytes;
        calibration.iters = flags->options.iters;
        calibration.warmup = flags->options.warmup;
        calibration.timeout_s = flags->options.timeout_s;
        CostProfile profile = calibrate_cost_profile(comm, calibration);
        profile.wire = job_wire(comm);
        if (comm.rank() == 0) {
          std::cout << "# cost model: "
                    << (flags->verbose ? describe_profile_in_full(profile) : describe_profile(profile)) << "\n"
                    << "# fitted on wire " << profile.wire.short_text() << "\n";
          save_profile(flags->profile_path, profile);
          std::cout << "# saved to " << flags->profile_path << " (use: cclab bench <collective> --profile "
                    << flags->profile_path << ")\n";
        }
        return true;
      }
      run_p2p_bench(comm, flags->options, argv, std::cout);
      return true;
    });
  });
}

}  // namespace

CommandAction add_bench_commands(CLI::App& app, const std::vector<std::string>& argv) {
  CLI::App* bench = app.add_subcommand("bench", "Benchmark collectives (nccl-tests) and point-to-point traffic (OSU)");
  bench->require_subcommand(1);
  auto actions = std::make_shared<std::vector<std::pair<CLI::App*, CommandAction>>>();
  add_collective_commands(*bench, argv, *actions);
  add_p2p_command(*bench, argv, *actions);
  return [bench, actions]() -> int {
    for (const auto& [command, action] : *actions)
      if (bench->got_subcommand(command)) return action();
    return 2;
  };
}

}  // namespace cclab
