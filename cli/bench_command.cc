// `cclab bench <collective>`: nccl-tests flags (DESIGN 3.4), launch (DESIGN 3.1), then the sweep.
#include <iostream>
#include <memory>
#include <sstream>

#include "cclab/error.h"
#include "cclab/implementation.h"
#include "cclab/launch.h"
#include "collective_bench.h"
#include "commands.h"

namespace cclab {

size_t parse_size(const std::string& text) {
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  const std::string suffix = text.substr(digits);
  size_t multiplier = 1;
  if (suffix == "K" || suffix == "k") multiplier = size_t{1} << 10;
  else if (suffix == "M" || suffix == "m") multiplier = size_t{1} << 20;
  else if (suffix == "G" || suffix == "g") multiplier = size_t{1} << 30;
  else if (!suffix.empty()) digits = 0;
  if (digits == 0 || digits > 15) throw UsageError("bad size '" + text + "' (expected e.g. 8, 64K, 256M, 1G)");
  return std::stoull(text.substr(0, digits)) * multiplier;
}

namespace {

struct BenchFlags {
  int ranks = -1;  // -1: not given
  std::string min_bytes = "8", max_bytes = "64M", step_bytes;
  double step_factor = 2;
  std::string dtype = "f32", op = "sum", impls, segment = "1M", bind = "core", transport = "ucx";
  int ranks_per_node = 0;
  CollectiveBenchOptions options;
};

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> items;
  std::stringstream stream(text);
  for (std::string item; std::getline(stream, item, ',');)
    if (!item.empty()) items.push_back(item);
  return items;
}

// Checks everything that can be checked before any rank starts, so bad input costs nothing.
void validate(BenchFlags& flags, Collective collective) {
  CollectiveBenchOptions& o = flags.options;
  o.collective = collective;
  o.min_bytes = parse_size(flags.min_bytes);
  o.max_bytes = parse_size(flags.max_bytes);
  if (o.min_bytes > o.max_bytes)
    throw UsageError("-b/--minbytes (" + flags.min_bytes + ") is larger than -e/--maxbytes (" + flags.max_bytes + ")");
  o.step_bytes = flags.step_bytes.empty() ? 0 : parse_size(flags.step_bytes);
  if (!flags.step_bytes.empty() && o.step_bytes == 0) throw UsageError("-i/--stepbytes must be positive");
  if (flags.step_factor < 1) throw UsageError("-f/--stepfactor must be at least 1");
  o.step_factor = flags.step_factor;
  const auto dtype = parse_dtype(flags.dtype);
  if (!dtype) throw UsageError("unknown datatype '" + flags.dtype + "' (f32 f64 f16 bf16 i32 i64 u8)");
  o.dtype = *dtype;
  const auto op = parse_op(flags.op);
  if (!op) throw UsageError("unknown reduction op '" + flags.op + "' (sum prod min max avg)");
  o.op = *op;
  o.impls = split_list(flags.impls);
  if (flags.impls.empty())  // default: every hand-written algorithm of this collective
    for (const Algorithm& algorithm : algorithm_registry())
      if (algorithm.collective == collective) o.impls.push_back(algorithm.name);
  if (o.impls.empty()) throw UsageError("--impl needs at least one implementation");
  for (const std::string& name : o.impls) {
    if (name == "auto") throw UsageError("--impl auto needs the fitted model, which this build does not have yet");
    const auto vendors = vendor_implementation_names(collective);
    if (!find_algorithm(collective, name) && std::find(vendors.begin(), vendors.end(), name) == vendors.end()) {
      std::string known;
      for (const Algorithm& algorithm : algorithm_registry())
        if (algorithm.collective == collective) known += (known.empty() ? "" : ", ") + algorithm.name;
      for (const std::string& vendor : vendors) known += ", " + vendor;
      throw UsageError("unknown implementation '" + name + "' for " + std::string(collective_name(collective)) +
                       " (this build has: " + known + ")");
    }
  }
  o.segment_bytes = parse_size(flags.segment);
  if (o.segment_bytes == 0) throw UsageError("--segment must be positive");
  if (o.iters < 1) throw UsageError("--iters must be at least 1");
  if (o.warmup < 0) throw UsageError("-w/--warmup must not be negative");
  if (o.timeout_s <= 0) throw UsageError("--timeout must be positive");
  if (flags.ranks == 0 || flags.ranks < -1) throw UsageError("-n must be at least 1");
  if (flags.bind != "core" && flags.bind != "none") throw UsageError("--bind takes core or none");
  if (o.max_bytes / dtype_size(o.dtype) > size_t(INT32_MAX))
    throw UsageError("-e/--maxbytes allows more than 2^31-1 elements, which MPI counts cannot express");
  const bool rooted = collective == Collective::broadcast || collective == Collective::reduce;
  if (o.root != 0 && !rooted)
    throw UsageError("-r/--root applies to broadcast and reduce; " + std::string(collective_name(collective)) +
                     " has no root");
  if (o.root < 0 || (flags.ranks > 0 && o.root >= flags.ranks))
    throw UsageError("-r/--root " + std::to_string(o.root) + " is not a rank of the job");
}

int run_as_rank(BenchFlags& flags, const std::vector<std::string>& argv) {
  const LaunchKind kind = detect_launch();
  if (flags.ranks != -1 && flags.ranks != launcher_world_size())
    throw UsageError("-n " + std::to_string(flags.ranks) + " differs from the launcher's world size " +
                     std::to_string(launcher_world_size()) + " (drop -n under mpirun/srun)");
  if (kind != LaunchKind::mpi)
    for (const std::string& name : flags.options.impls)
      if (needs_mpi_launch(name))
        throw UsageError("--impl " + name + " needs ranks started by mpirun (or cclab -n N, which uses mpirun for it)");
  std::string fingerprint;
  for (size_t i = 1; i < argv.size(); ++i) fingerprint += argv[i] + '\0';
  std::unique_ptr<Bootstrap> bootstrap = join_job(fingerprint, flags.options.timeout_s);
  const int rank = bootstrap->rank();
  if (flags.options.root >= bootstrap->size()) {
    if (rank == 0)
      std::cerr << "cclab: error: -r/--root " << flags.options.root << " is not a rank of the job (" << bootstrap->size()
                << " ranks)\n";
    return 2;
  }
  try {
    CommOptions comm_options;
    comm_options.transport = flags.transport;
    comm_options.timeout_s = flags.options.timeout_s;
    comm_options.ranks_per_node = flags.ranks_per_node;
    comm_options.yield_when_idle = this_rank_placement().oversubscribed;
    std::unique_ptr<Comm> comm = Comm::create(std::move(bootstrap), comm_options);
    run_collective_bench(*comm, flags.options, argv, std::cout);
    comm->transport().shutdown();  // collective: nobody tears down while a peer still needs it
    return 0;
  } catch (const UsageError& error) {
    if (rank == 0) std::cerr << "cclab: error: " << error.what() << "\n";
    return 2;
  } catch (const std::exception& error) {
    std::cerr << "cclab: rank " << rank << ": " << error.what() << "\n";
    return 1;
  }
}

}  // namespace

CommandAction add_bench_commands(CLI::App& app, const std::vector<std::string>& argv) {
  CLI::App* bench = app.add_subcommand("bench", "Benchmark collectives (nccl-tests flags and columns)");
  bench->require_subcommand(1);
  auto flags = std::make_shared<BenchFlags>();
  auto chosen = std::make_shared<Collective>(Collective::allreduce);
  for (Collective collective : {Collective::allreduce, Collective::broadcast, Collective::reduce,
                                Collective::reduce_scatter, Collective::allgather}) {
    const std::string name(collective_name(collective));
    CLI::App* sub = bench->add_subcommand(name, "Sweep message sizes of " + name + " over the chosen implementations");
    CollectiveBenchOptions& o = flags->options;
    sub->add_option("-n,--ranks", flags->ranks, "Local ranks to start (as mpirun -n); under a launcher: its world size");
    sub->add_option("-b,--minbytes", flags->min_bytes, "Smallest message size (K, M, G = 1024^1..3)")->capture_default_str();
    sub->add_option("-e,--maxbytes", flags->max_bytes, "Largest message size")->capture_default_str();
    sub->add_option("-f,--stepfactor", flags->step_factor, "Multiply the size by this factor each step")->capture_default_str();
    sub->add_option("-i,--stepbytes", flags->step_bytes, "Add this many bytes each step instead of -f");
    sub->add_option("--iters", o.iters, "Timed iterations per size and implementation")->capture_default_str();
    sub->add_option("-w,--warmup", o.warmup, "Untimed iterations before timing")->capture_default_str();
    sub->add_option("-d,--datatype", flags->dtype, "f32 f64 f16 bf16 i32 i64 u8")->capture_default_str();
    sub->add_option("-o,--op", flags->op, "sum prod min max avg")->capture_default_str();
    sub->add_option("-r,--root", o.root, "Root rank of rooted collectives")->capture_default_str();
    sub->add_flag("-c,--check", o.check, "Check every result and count wrong elements");
    sub->add_option("--impl", flags->impls,
                    "Comma-separated implementations (see cclab info); default: every hand-written one");
    sub->add_option("--timeout", o.timeout_s, "Seconds any wait may take before the job fails")->capture_default_str();
    sub->add_option("--json", o.json_path, "Append one JSON record per (size, impl) to this file");
    sub->add_flag("--inplace", o.inplace, "Run the in-place form (input buffer = output buffer)");
    sub->add_flag("--percentiles", o.percentiles, "Also report the 99th percentile time");
    sub->add_option("--segment", flags->segment, "Pipelining segment of segmented algorithms")->capture_default_str();
    sub->add_option("--segments-in-flight", o.segments_in_flight, "Receive slots per segmented algorithm")
        ->capture_default_str()->check(CLI::Range(1, 1024));
    sub->add_option("--bind", flags->bind, "core: pin local ranks to cores when they fit; none")->capture_default_str();
    sub->add_option("--ranks-per-node", flags->ranks_per_node, "Group ranks into virtual nodes of this size")
        ->check(CLI::NonNegativeNumber);
    sub->add_option("--transport", flags->transport, "Transport of hand-written algorithms (ucx)")->capture_default_str();
    sub->callback([chosen, collective] { *chosen = collective; });
  }
  return [flags, chosen, argv]() -> int {
    validate(*flags, *chosen);
    if (detect_launch() != LaunchKind::none) return run_as_rank(*flags, argv);
    LocalLaunchOptions launch;
    launch.ranks = flags->ranks > 0 ? flags->ranks : 1;
    launch.timeout_s = flags->options.timeout_s;
    launch.bind = flags->bind == "core";
    for (const std::string& name : flags->options.impls) launch.through_mpirun |= needs_mpi_launch(name);
    return launch_local(argv, launch);
  };
}

}  // namespace cclab
