#include "scaling.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>

#include "cclab/error.h"
#include "cclab/launch.h"
#include "results.h"
#include "statistics.h"
#include "text_format.h"

namespace cclab::train {
namespace {

// The arguments without the options that each run sets for itself.
std::vector<std::string> strip_arguments(const std::vector<std::string>& argv) {
  static const std::vector<std::string> kWithValue{"--scaling", "--repeat", "--json", "-n", "--ranks", "--mode"};
  std::vector<std::string> kept;
  for (size_t i = 0; i < argv.size(); ++i) {
    bool drop = false;
    for (const std::string& name : kWithValue) {
      if (argv[i] == name) {
        drop = true;
        ++i;  // and its value
        break;
      }
      if (argv[i].rfind(name + "=", 0) == 0 || (name == "-n" && argv[i].size() > 2 && argv[i].rfind("-n", 0) == 0 &&
                                                std::isdigit(static_cast<unsigned char>(argv[i][2])))) {
        drop = true;
        break;
      }
    }
    if (!drop) kept.push_back(argv[i]);
  }
  return kept;
}

// One `cclab train` job of `ranks` local ranks in `mode` (`when`: which round, for the progress
// line): its exit status, and its train record in `train_record`.
int run_scaled(const ScalingOptions& options, const std::vector<std::string>& argv, const std::string& mode, int ranks,
               const std::string& when, std::ostream& out, nlohmann::json& train_record) {
  const std::string scratch =
      (std::filesystem::temp_directory_path() / ("cclab_scaling_" + std::to_string(getpid()) + ".jsonl")).string();
  std::filesystem::remove(scratch);
  std::vector<std::string> run_argv = strip_arguments(argv);
  for (const std::string& extra :
       {std::string("--mode"), mode, std::string("-n"), std::to_string(ranks), std::string("--json"), scratch})
    run_argv.push_back(extra);
  // Flushed before the job starts: its ranks write to the same output.
  out << "# --scaling: " << mode << " mode, " << ranks << (ranks == 1 ? " rank" : " ranks") << when << "\n"
      << std::flush;
  LocalLaunchOptions launch;
  launch.ranks = ranks;
  launch.timeout_s = options.timeout_s;
  launch.bind = options.bind;
  const int status = launch_local(run_argv, launch);
  if (status == 0)
    for (const nlohmann::json& record : read_results(scratch))
      if (record.value("kind", "") == "train") train_record = record;
  std::filesystem::remove(scratch);
  if (status == 0 && train_record.is_null())
    throw Error("the " + std::to_string(ranks) + "-rank run wrote no train record");
  return status;
}

void print_table_header(const nlohmann::json& base, size_t rounds, std::ostream& out) {
  out << "# scaling: " << base["model"].get<std::string>() << ", global batch " << base["global_batch"] << ", "
      << base["threads"] << " thread(s) per rank; speedup in images/s over "
      << (base["ranks"] == 1 ? "1 rank" : "the first run");
  if (rounds > 1)
    out << "; " << rounds << " rounds: each row is its median round, its speedup the median of its rounds' (each "
        << "over that round's baseline)";
  out << "\n# time per step in ms (compute / comm / idle); bytes sent per step and rank (max over ranks) by "
         "phase (ps: grad_sync is push + pull), measured, and the total predicted by DESIGN 3.7\n";
  char line[512];
  std::snprintf(line, sizeof line, "%-8s %5s %9s %9s %7s %8s %8s %7s %7s %11s %11s %11s %11s\n", "mode", "ranks",
                "grid", "images/s", "speedup", "step_ms", "compute", "comm", "idle", "forward_B", "backward_B",
                "grad_sync_B", "predicted_B");
  out << line;
}

void print_table_row(const nlohmann::json& record, double speedup, std::ostream& out) {
  const auto& time = record["step_time_s"];
  const auto& phases = record["phases"];
  const auto sent = [&](const char* phase) {
    return phases.contains(phase) ? phases[phase]["sent_bytes_per_rank"].get<double>() : 0.0;
  };
  const auto& predicted = record["predicted_sent_bytes_per_rank"];
  const std::string grid =
      record["grid"]["dp"].dump() + "x" + record["grid"]["tp"].dump() + "x" + record["grid"]["pp"].dump();
  const std::string mode = record["ranks"] == 1 ? "single" : record["mode"].get<std::string>();
  char line[512];
  std::snprintf(line, sizeof line, "%-8s %5d %9s %9.0f %7.2f %8.2f %8.2f %7.2f %7.2f %11.0f %11.0f %11.0f %11s\n",
                mode.c_str(), record["ranks"].get<int>(), grid.c_str(), record["images_per_s"].get<double>(), speedup,
                time["total"].get<double>() * 1e3, time["compute"].get<double>() * 1e3,
                time["comm"].get<double>() * 1e3, time["idle"].get<double>() * 1e3, sent("forward"), sent("backward"),
                sent("grad_sync") + sent("push") + sent("pull"),
                predicted.is_number() ? std::to_string(std::llround(predicted.get<double>())).c_str() : "-");
  out << line;
}

}  // namespace

int run_scaling(const ScalingOptions& options, const std::vector<std::string>& argv, std::ostream& out) {
  // The jobs started here are one run: their records carry this run's id and start time.
  setenv("CCLAB_RUN_ID", run_id().c_str(), 1);
  setenv("CCLAB_RUN_START", run_start_time().c_str(), 1);
  ResultWriter user_json(options.json_path);
  // The table's rows: each mode at each rank count, one rank once (every mode's baseline).
  std::vector<std::pair<std::string, int>> rows;
  std::optional<size_t> single;
  for (const std::string& mode : options.modes)
    for (int ranks : options.ranks) {
      if (ranks == 1 && single) continue;
      if (ranks == 1) single = rows.size();
      rows.emplace_back(mode, ranks);
    }
  const size_t base = single.value_or(0);  // no 1-rank run: speedups over the first
  const auto rounds = size_t(std::max(options.rounds, 1));
  std::vector<std::vector<nlohmann::json>> runs(rows.size());
  for (size_t round = 0; round < rounds; ++round)
    for (size_t row = 0; row < rows.size(); ++row) {
      const std::string when = rounds > 1 ? format_text(", round %zu of %zu", round + 1, rounds) : "";
      nlohmann::json& record = runs[row].emplace_back();
      if (const int status = run_scaled(options, argv, rows[row].first, rows[row].second, when, out, record);
          status != 0)
        return status;
    }
  print_table_header(runs[base].front(), rounds, out);
  std::string per_round;
  for (size_t row = 0; row < rows.size(); ++row) {
    std::vector<double> rates, speedups;
    for (size_t round = 0; round < rounds; ++round) {
      rates.push_back(runs[row][round]["images_per_s"].get<double>());
      speedups.push_back(rates.back() / runs[base][round]["images_per_s"].get<double>());
    }
    // The median round by images/s (of an even count, the slower middle one).
    std::vector<size_t> order(rounds);
    std::iota(order.begin(), order.end(), size_t{0});
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return rates[a] < rates[b]; });
    nlohmann::json record = runs[row][order[(rounds - 1) / 2]];
    const double speedup = summarize(speedups).median;
    record["speedup"] = speedup;
    if (rounds > 1) {
      record["images_per_s_runs"] = rates;
      record["speedup_runs"] = speedups;
      if (row != base) {
        per_round += format_text("# %s, %d ranks: speedup per round", rows[row].first.c_str(), rows[row].second);
        for (double each : speedups) per_round += format_text(" %.2f", each);
        per_round += "\n";
      }
    }
    print_table_row(record, speedup, out);
    user_json.write(record);
  }
  out << per_round << std::flush;
  return 0;
}

}  // namespace cclab::train
