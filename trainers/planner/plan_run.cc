#include "planner/plan_run.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "backends/onednn/onednn_backend.h"
#include "cclab/error.h"
#include "cclab/launch.h"
#include "results.h"
#include "text_format.h"

namespace cclab::train {
namespace {

// The input shape of the built-in models and of Fashion-MNIST, on which every plan's model runs.
const ActivationShape kInputShape{1, 28, 28};
// The longest plan this host simulates: far beyond a local job, short of minutes of simulation.
constexpr size_t kMostRanks = 1024;
constexpr size_t kProfileSteps = 12;

// Runs `command` (cclab arguments after argv[0]) as a local job of `ranks` ranks with its
// standard output discarded (the plan prints its own table); its errors still reach stderr.
int run_quietly(const std::string& program, const std::vector<std::string>& command, int ranks, double timeout_s) {
  std::vector<std::string> argv{program};
  argv.insert(argv.end(), command.begin(), command.end());
  std::cout.flush();
  const int saved = ::dup(STDOUT_FILENO);
  const int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (saved < 0 || null < 0) throw Error("cannot redirect the output of a measuring job");
  ::dup2(null, STDOUT_FILENO);
  ::close(null);
  LocalLaunchOptions launch;
  launch.ranks = ranks;
  launch.timeout_s = timeout_s;
  int status = 1;
  try {
    status = launch_local(argv, launch);
  } catch (...) {
    ::dup2(saved, STDOUT_FILENO);
    ::close(saved);
    throw;
  }
  ::dup2(saved, STDOUT_FILENO);
  ::close(saved);
  return status;
}

std::string scratch_path(const std::string& what) {
  return (std::filesystem::temp_directory_path() / ("cclab_plan_" + std::to_string(getpid()) + "_" + what)).string();
}

// Synthetic samples of the models' input shape: one epoch of `steps` whole batches, so that every
// step's batch (and so its traffic) is the same.
std::string synthetic_data(size_t batch, size_t steps) { return "synthetic:1x28x28:" + std::to_string(batch * steps); }

double number_in(const std::string& key, const std::string& text, double lowest, double highest, bool whole) {
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !std::isfinite(value) || value < lowest || value > highest ||
      (whole && value != std::floor(value)))
    throw UsageError("--cluster " + key + "=" + text + " is out of range");
  return value;
}

LinkCost link_of(double alpha_us, double gbps) {
  LinkCost link;
  link.alpha_us = alpha_us;
  link.beta_us_per_byte = 1.0 / (gbps * 1e3);  // 10^9 bytes/s = 10^3 bytes/us
  return link;
}

std::string megabytes(double bytes) { return format_text("%.2f", bytes / 1e6); }

nlohmann::json step_time_json(double compute, double comm, double idle, double total) {
  return {{"compute", compute}, {"comm", comm}, {"idle", idle}, {"total", total}};
}

struct Measured {
  double total_s = 0, compute_s = 0, comm_s = 0, idle_s = 0;
  double memory_bytes = 0;  // what the rank that holds most held (the train record's memory_bytes_per_rank)
  nlohmann::json record;
};

const char* const kPhases[] = {"forward", "backward", "grad_sync", "push", "pull"};

double phase_of(const PhaseCounts& counts, size_t phase) { return counts.at(phase); }

double measured_phase(const nlohmann::json& record, const char* phase) {
  const auto& phases = record["phases"];
  return phases.contains(phase) ? phases[phase]["sent_bytes_per_rank"].get<double>() : 0.0;
}

// A validated strategy's runs, one per round. A shared machine slows whole runs at a time, so one
// run says little where two strategies lie a few percent apart: the rounds interleave the
// strategies, and the run of median step time stands for the strategy.
struct Validation {
  std::vector<Measured> runs;

  // Of an even count of runs, the slower of the middle two.
  const Measured& median() const {
    std::vector<const Measured*> sorted;
    for (const Measured& run : runs) sorted.push_back(&run);
    std::sort(sorted.begin(), sorted.end(),
              [](const Measured* a, const Measured* b) { return a->total_s < b->total_s; });
    return *sorted[sorted.size() / 2];
  }
  // (slowest - fastest) / median step time: how far this machine's runs of one strategy differ.
  double spread() const {
    const auto [fastest, slowest] = std::minmax_element(
        runs.begin(), runs.end(), [](const Measured& a, const Measured& b) { return a.total_s < b.total_s; });
    return (slowest->total_s - fastest->total_s) / median().total_s;
  }
  // Whether every run sent, in every phase, the bytes the planner predicted.
  bool bytes_equal(const PhaseCounts& predicted) const {
    for (const Measured& run : runs)
      for (size_t phase = 0; phase < PhaseCounts::kPhases; ++phase)
        if (measured_phase(run.record, kPhases[phase]) != phase_of(predicted, phase)) return false;
    return true;
  }
};

// The strategies of options.modes (all when empty) that fit `ranks` ranks.
std::vector<Strategy> selected_strategies(const PlanOptions& options, const ModelPlan& plan, const LayerTimes& layers,
                                          size_t ranks) {
  std::vector<Strategy> strategies;
  for (const Strategy& strategy : enumerate_strategies(plan, layers, ranks, options.batch))
    if (options.modes.empty() ||
        std::find(options.modes.begin(), options.modes.end(), strategy.mode) != options.modes.end())
      strategies.push_back(strategy);
  return strategies;
}

}  // namespace

ClusterShape parse_cluster(const std::string& spec) {
  std::map<std::string, std::string> values;
  std::stringstream in(spec);
  for (std::string item; std::getline(in, item, ',');) {
    const size_t equals = item.find('=');
    if (equals == std::string::npos) throw UsageError("--cluster takes key=value items, not '" + item + "'");
    values[item.substr(0, equals)] = item.substr(equals + 1);
  }
  static const std::vector<std::string> kRequired{"nodes",      "ranks-per-node", "intra-alpha-us",
                                                  "intra-gbps", "inter-alpha-us", "inter-gbps"};
  static const std::vector<std::string> kOptional{"compute", "reduce-gbps"};
  for (const auto& [key, value] : values)
    if (std::find(kRequired.begin(), kRequired.end(), key) == kRequired.end() &&
        std::find(kOptional.begin(), kOptional.end(), key) == kOptional.end())
      throw UsageError("--cluster: unknown key '" + key +
                       "' (nodes, ranks-per-node, intra-alpha-us, intra-gbps, inter-alpha-us, inter-gbps, compute, "
                       "reduce-gbps)");
  for (const std::string& key : kRequired)
    if (!values.count(key)) throw UsageError("--cluster needs " + key + "=...");
  ClusterShape cluster;
  cluster.what_if = true;
  cluster.nodes = size_t(number_in("nodes", values["nodes"], 1, 4096, true));
  cluster.ranks_per_node = size_t(number_in("ranks-per-node", values["ranks-per-node"], 1, 1024, true));
  if (cluster.ranks() > kMostRanks || cluster.ranks() < 2)
    throw UsageError("--cluster describes " + std::to_string(cluster.ranks()) + " ranks; plans are for 2 to " +
                     std::to_string(kMostRanks));
  const LinkCost intra = link_of(number_in("intra-alpha-us", values["intra-alpha-us"], 0, 1e6, false),
                                 number_in("intra-gbps", values["intra-gbps"], 1e-6, 1e5, false));
  const LinkCost inter = link_of(number_in("inter-alpha-us", values["inter-alpha-us"], 0, 1e6, false),
                                 number_in("inter-gbps", values["inter-gbps"], 1e-6, 1e5, false));
  cluster.compute_speed = values.count("compute") ? number_in("compute", values["compute"], 1e-3, 1e4, false) : 1.0;
  const double reduce_gbps =
      values.count("reduce-gbps") ? number_in("reduce-gbps", values["reduce-gbps"], 1e-3, 1e5, false) : 10.0;
  RegimeCost regime;
  regime.intra_node = intra;
  regime.inter_node = inter;
  regime.gamma_us_per_byte = 1.0 / (reduce_gbps * 1e3);
  regime.copy_us_per_byte = regime.gamma_us_per_byte;
  cluster.profile.transport = "what-if";
  cluster.profile.cached = regime;
  cluster.profile.streaming = regime;
  cluster.profile.host_ports = {1, inter.large_message_beta()};  // one NIC per host, as the step's messages have
  return cluster;
}

void check_plan_options(const PlanOptions& options) {
  const ModelPlan plan = plan_model(options.model, kInputShape);  // UsageError for an unknown model
  for (const std::string& mode : options.modes)
    if (mode != "data" && mode != "tensor" && mode != "pipeline" && mode != "hybrid" && mode != "ps")
      throw UsageError("unknown strategy '" + mode + "' (data, tensor, pipeline, hybrid, ps)");
  size_t ranks = options.ranks;
  if (!options.cluster.empty()) {
    const ClusterShape cluster = parse_cluster(options.cluster);
    if (ranks != 0 && ranks != cluster.ranks())
      throw UsageError("-n " + std::to_string(ranks) + " and --cluster's " + std::to_string(cluster.ranks()) +
                       " ranks disagree");
    ranks = cluster.ranks();
    if (!options.profile_path.empty()) throw UsageError("--cluster describes the network: give no --profile");
    if (options.validate > 0) throw UsageError("--validate runs on this host: a --cluster plan is predicted only");
  }
  if (ranks < 2 || ranks > kMostRanks)
    throw UsageError("plan for 2 to " + std::to_string(kMostRanks) + " ranks (-n N or --cluster)");
  if (options.batch < ranks)
    throw UsageError("--batch " + std::to_string(options.batch) + " is smaller than the " + std::to_string(ranks) +
                     " ranks: data-parallel ranks need a sample each");
  // Which strategies fit depends on the model and the ranks only (the layer times just balance the
  // pipeline stages): checked now, before anything is measured.
  LayerTimes uniform;
  for (const LayerConfig& layer : plan.layers) uniform.layers.push_back({layer.name(), 1, 1, 0, 1});
  if (selected_strategies(options, plan, uniform, ranks).empty())
    throw UsageError("no strategy of those asked for fits " + std::to_string(ranks) + " ranks of " + options.model);
  if (!options.layers_path.empty())
    check_layer_times_match(load_layer_times(options.layers_path), plan, options.model, options.batch, options.threads,
                            options.layers_path);
  if (!options.profile_path.empty()) load_profile(options.profile_path);
}

int run_plan(const PlanOptions& options, const std::vector<std::string>& argv, std::ostream& out) {
  check_plan_options(options);
  const std::string program = argv.empty() ? "cclab" : argv.front();
  PlanInputs inputs;
  inputs.model = plan_model(options.model, kInputShape);
  inputs.batch = options.batch;
  std::string layers_source = options.layers_path, profile_source = options.profile_path;
  if (!options.cluster.empty()) {
    inputs.cluster = parse_cluster(options.cluster);
  } else {
    inputs.cluster.ranks_per_node = options.ranks;
    const long cores = sysconf(_SC_NPROCESSORS_ONLN);
    inputs.cluster.cores_per_node = cores > 0 ? size_t(cores) : 0;
  }
  // What no file gives is measured now, on this host, as the files would have been.
  if (options.layers_path.empty()) {
    out << "# no --layers: measuring " << options.model << "'s layers at batch " << options.batch << " on one rank ("
        << kProfileSteps << " steps)\n"
        << std::flush;
    const std::string scratch = scratch_path("layers.json");
    const int status =
        run_quietly(program,
                    {"train", "--model", options.model, "--batch", std::to_string(options.batch), "--threads",
                     std::to_string(options.threads), "--steps", std::to_string(kProfileSteps), "--no-eval", "--data",
                     synthetic_data(options.batch, kProfileSteps), "--profile-layers", scratch},
                    1, options.timeout_s);
    if (status != 0) return status;
    inputs.layers = load_layer_times(scratch);
    std::filesystem::remove(scratch);
    layers_source = "measured now";
  } else {
    inputs.layers = load_layer_times(options.layers_path);
  }
  if (options.cluster.empty()) {
    if (options.profile_path.empty()) {
      out << "# no --profile: measuring the network's alpha-beta costs (cclab bench p2p --fit, 2 ranks)\n"
          << std::flush;
      const std::string scratch = scratch_path("profile.json");
      const int status =
          run_quietly(program, {"bench", "p2p", "--fit", "--profile", scratch, "-n", "2"}, 2, options.timeout_s);
      if (status != 0) return status;
      inputs.cluster.profile = load_profile(scratch);
      std::filesystem::remove(scratch);
      profile_source = "measured now";
    } else {
      inputs.cluster.profile = load_profile(options.profile_path);
    }
  }
  const size_t ranks = inputs.cluster.ranks();
  const std::vector<Strategy> strategies = selected_strategies(options, inputs.model, inputs.layers, ranks);
  // Split layers on this host: their own times, since a slice runs slower than its share of the work.
  std::string slices_line;
  const bool sliced = std::any_of(strategies.begin(), strategies.end(), [](const Strategy& strategy) {
    return strategy.mode == "tensor" || strategy.mode == "hybrid";
  });
  if (sliced && !inputs.cluster.what_if) {
    out << "# measuring the tensor-parallel slices of " << options.model << "'s layers at batch " << options.batch
        << " on one rank\n"
        << std::flush;
    set_compute_threads(options.threads);
    OnednnBackend backend;
    inputs.slice_time_ratios = measure_slice_time_ratios(inputs.model, ranks, options.batch, backend);
    if (!inputs.slice_time_ratios.empty()) {
      const auto [least, most] = std::minmax_element(
          inputs.slice_time_ratios.begin(), inputs.slice_time_ratios.end(),
          [](const auto& a, const auto& b) { return a.second < b.second; });
      slices_line = format_text("# tensor slices: a layer's slice on one of %zu ranks takes %.2f to %.2f of the whole "
                                "layer's time (measured now; its share of the work is about %.2f)\n",
                                ranks, least->second, most->second, 1.0 / double(ranks));
    }
  }
  const std::vector<StrategyPrediction> ranked = rank_strategies(inputs, strategies);

  // Validation: the top K run with cclab train, in turn, for --repeat rounds. One run adds its
  // measurement to `into`; a run that fails ends the plan with its exit status.
  auto validation_run = [&](const Strategy& strategy, Validation& into) -> int {
    const std::string scratch = scratch_path("validate.jsonl");
    std::filesystem::remove(scratch);
    std::vector<std::string> command{"train",
                                     "--model",
                                     options.model,
                                     "--batch",
                                     std::to_string(options.batch),
                                     "--threads",
                                     std::to_string(options.threads),
                                     "--steps",
                                     std::to_string(options.validate_steps),
                                     "--no-eval",
                                     "--data",
                                     synthetic_data(options.batch, options.validate_steps)};
    for (const std::string& argument : strategy.train_arguments()) command.push_back(argument);
    for (const std::string& argument : {std::string("-n"), std::to_string(ranks), std::string("--json"), scratch})
      command.push_back(argument);
    if (const int status = run_quietly(program, command, int(ranks), options.timeout_s); status != 0) return status;
    const size_t runs_before = into.runs.size();
    for (const nlohmann::json& record : read_results(scratch))
      if (record.value("kind", "") == "train") {
        const auto& time = record["step_time_s"];
        into.runs.push_back(Measured{time["total"].get<double>(), time["compute"].get<double>(),
                                     time["comm"].get<double>(), time["idle"].get<double>(),
                                     record["memory_bytes_per_rank"].get<double>(), record});
      }
    std::filesystem::remove(scratch);
    if (into.runs.size() != runs_before + 1)
      throw Error("the validation run of " + strategy.name() + " wrote no train record");
    return 0;
  };
  std::vector<Validation> measured(ranked.size());
  const size_t validated = std::min(options.validate, ranked.size());
  for (size_t round = 0; round < options.validate_rounds; ++round)
    for (size_t i = 0; i < validated; ++i) {
      out << "# --validate " << (options.validate_rounds > 1 ? format_text("round %zu, ", round + 1) : "") << (i + 1)
          << "/" << validated << ": cclab train " << ranked[i].strategy.name() << " on " << ranks << " ranks, "
          << options.validate_steps << " steps\n"
          << std::flush;
      if (const int status = validation_run(ranked[i].strategy, measured[i]); status != 0) return status;
    }

  // The table.
  const ClusterShape& cluster = inputs.cluster;
  out << "# plan: " << inputs.model.name << " (" << inputs.model.parameter_count() << " parameters), global batch "
      << options.batch << ", " << ranks << " ranks (" << cluster.nodes << " node(s) x " << cluster.ranks_per_node
      << "), " << options.threads << " thread(s) per rank\n";
  if (cluster.ranks_share_cores(options.threads)) {
    out << "# " << cluster.ranks_per_node << " ranks x " << options.threads << " thread(s) on "
        << cluster.cores_per_node << " cores: ranks placed on one core compute one after another; step times are"
        << " the mean over " << cluster.core_deals(options.threads) << " placements (the first: core(s) by rank";
    for (size_t local = 0; local < cluster.ranks_per_node; ++local) {
      std::string cores;
      for (size_t core : cluster.cores_of(local, options.threads, 0))
        cores += (cores.empty() ? "" : "+") + std::to_string(core);
      out << " " << cores;
    }
    out << ")\n";
  }
  if (cluster.what_if) out << "# what-if cluster (predicted only, nothing measured): " << options.cluster << "\n";
  out << "# compute: per-layer times " << (layers_source == "measured now" ? "measured now" : "from " + layers_source)
      << " (" << format_text("%.3f", (inputs.layers.forward_s() + inputs.layers.backward_s()) * 1e3)
      << " ms forward+backward per step on one rank"
      << (cluster.compute_speed != 1 ? format_text(", divided by %g", cluster.compute_speed) : std::string()) << ")\n";
  out << slices_line;
  out << "# network: " << describe_profile(cluster.profile)
      << (cluster.what_if                    ? ""
          : profile_source == "measured now" ? ", measured now"
                                             : ", from " + profile_source)
      << "\n";
  out << "# step time in ms (simulated: compute / exposed comm / idle of the slowest rank); bytes sent per step and "
         "rank (max over ranks) by phase; memory per rank in MB (parameters, gradients, momentum, activations)"
      << (validated > 0 ? "; meas_MB: what the median run's fullest rank held (its buffers, registered memory)" : "")
      << "\n";
  out << format_text("%4s %-15s %14s %5s %8s %7s %7s %7s %10s %10s %10s %10s %8s", "rank", "strategy", "grid", "micro",
                     "step_ms", "compute", "comm", "idle", "forward_B", "backward_B", "grad_sync_B", "push_pull_B",
                     "mem_MB");
  if (validated > 0) {
    out << format_text(" %11s %17s %6s %7s", "measured_ms", "measured_c/m/i", "error", "meas_MB");
    if (options.validate_rounds > 1) out << format_text(" %6s", "spread");
    out << format_text(" %7s", "bytes");
  }
  out << "  why\n";
  bool bytes_mismatch = false;
  for (size_t i = 0; i < ranked.size(); ++i) {
    const StrategyPrediction& p = ranked[i];
    const Strategy& s = p.strategy;
    const std::string grid =
        std::to_string(s.grid.dp) + "x" + std::to_string(s.grid.tp) + "x" + std::to_string(s.grid.pp);
    out << format_text(
        "%4zu %-15s %14s %5s %8.3f %7.3f %7.3f %7.3f %10.0f %10.0f %11.0f %11.0f %8s", i + 1, s.name().c_str(),
        grid.c_str(), s.mode == "pipeline" ? std::to_string(s.micro_batches).c_str() : "-", p.total_s * 1e3,
        p.compute_s * 1e3, p.comm_s * 1e3, p.idle_s * 1e3, p.sent_bytes.forward, p.sent_bytes.backward,
        p.sent_bytes.grad_sync, p.sent_bytes.push + p.sent_bytes.pull, megabytes(p.memory_bytes).c_str());
    if (validated > 0) {
      const bool rounds = options.validate_rounds > 1;
      if (!measured[i].runs.empty()) {
        const bool same = measured[i].bytes_equal(p.sent_bytes);
        bytes_mismatch = bytes_mismatch || !same;
        const Measured& median = measured[i].median();
        const std::string split =
            format_text("%.2f/%.2f/%.2f", median.compute_s * 1e3, median.comm_s * 1e3, median.idle_s * 1e3);
        out << format_text(" %11.3f %17s %+5.0f%% %7s", median.total_s * 1e3, split.c_str(),
                           100 * (p.total_s - median.total_s) / median.total_s, megabytes(median.memory_bytes).c_str());
        if (rounds) out << format_text(" %5.0f%%", 100 * measured[i].spread());
        out << format_text(" %7s", same ? "equal" : "DIFFER");
      } else {
        out << format_text(" %11s %17s %6s %7s", "-", "-", "-", "-") << (rounds ? format_text(" %6s", "-") : "")
            << format_text(" %7s", "-");
      }
    }
    out << "  " << p.why << "\n";
  }
  if (validated > 1) {
    size_t fastest = 0;
    for (size_t i = 1; i < validated; ++i)
      if (measured[i].median().total_s < measured[fastest].median().total_s) fastest = i;
    const double first_s = measured[0].median().total_s, fastest_s = measured[fastest].median().total_s;
    const double behind = (first_s - fastest_s) / fastest_s;
    const std::string of_runs = options.validate_rounds > 1
                                    ? format_text(" (medians of %zu runs each)", options.validate_rounds)
                                    : std::string();
    out << "# first pick " << ranked[0].strategy.name()
        << (fastest == 0 ? " measured fastest of the " + std::to_string(validated) + " validated"
                         : format_text(" measured %.1f%% behind the fastest validated, ", 100 * behind) +
                               ranked[fastest].strategy.name())
        << of_runs << "\n";
  }

  // The records.
  ResultWriter writer(options.json_path);
  for (size_t i = 0; i < ranked.size(); ++i) {
    const StrategyPrediction& p = ranked[i];
    const Strategy& s = p.strategy;
    nlohmann::json record = base_record("plan", argv);
    record["model"] = inputs.model.name;
    record["mode"] = s.mode;
    record["strategy"] = s.name();
    record["ranks"] = ranks;
    record["nodes"] = cluster.nodes;
    record["grid"] = {{"dp", s.grid.dp}, {"tp", s.grid.tp}, {"pp", s.grid.pp}};
    record["global_batch"] = options.batch;
    record["threads"] = options.threads;
    record["micro_batches"] = s.mode == "pipeline" ? nlohmann::json(s.micro_batches) : nlohmann::json(nullptr);
    record["schedule"] = s.mode == "pipeline" ? nlohmann::json(s.schedule) : nlohmann::json(nullptr);
    if (s.mode == "ps")
      record["servers"] = s.ps_servers == 0 ? nlohmann::json("colocated") : nlohmann::json(s.ps_servers);
    record["train_arguments"] = s.train_arguments();
    record["predicted_step_time_s"] = step_time_json(p.compute_s, p.comm_s, p.idle_s, p.total_s);
    record["predicted_sent_bytes_per_rank"] = p.sent_bytes_total;
    nlohmann::json phases = nlohmann::json::object();
    for (size_t phase = 0; phase < PhaseCounts::kPhases; ++phase)
      if (phase_of(p.sent_bytes, phase) > 0 || phase < 3)
        phases[kPhases[phase]] = {{"predicted_sent_bytes_per_rank", phase_of(p.sent_bytes, phase)}};
    record["phases"] = phases;
    record["predicted_memory_bytes_per_rank"] = p.memory_bytes;
    record["rank_in_plan"] = i + 1;
    record["why"] = p.why;
    record["predicted"] = cluster.what_if;
    record["layers_source"] = layers_source;
    record["profile_source"] = cluster.what_if ? "--cluster" : profile_source;
    if (cluster.what_if) record["cluster"] = options.cluster;
    if (!measured[i].runs.empty()) {
      const Measured& m = measured[i].median();
      record["measured_step_time_s"] = step_time_json(m.compute_s, m.comm_s, m.idle_s, m.total_s);
      nlohmann::json totals = nlohmann::json::array();
      for (const Measured& run : measured[i].runs) totals.push_back(run.total_s);
      record["measured_step_time_total_s_runs"] = totals;
      record["measured_sent_bytes_per_rank"] = m.record["sent_bytes_per_rank"];
      record["measured_memory_bytes_per_rank"] = m.memory_bytes;
      nlohmann::json measured_phases = nlohmann::json::object();
      for (const char* phase : kPhases) measured_phases[phase] = measured_phase(m.record, phase);
      record["measured_phases_sent_bytes_per_rank"] = measured_phases;
    }
    writer.write(record);
  }
  out << std::flush;
  if (bytes_mismatch) {
    out << "# error: a validated strategy's measured bytes differ from the planner's\n";
    return kChecksFailedExitStatus;
  }
  return 0;
}

}  // namespace cclab::train
