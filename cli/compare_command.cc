// `cclab compare BASE NEW`: the gate a CI job puts after a benchmark run (DESIGN 3.9).
#include <cstdio>
#include <iostream>
#include <memory>

#include "cclab/error.h"
#include "cclab/launch.h"
#include "commands.h"
#include "compare.h"
#include "flag_checks.h"
#include "results.h"

namespace cclab {
namespace {

struct CompareFlags {
  std::string base, fresh, base_run, fresh_run;
  double threshold_percent = 5;
  CompareOptions options;
};

std::string describe_run(const std::string& path, const RunRecords& run) {
  return path + " (run " + (run.run_id.empty() ? "without id" : run.run_id) +
         (run.start_time.empty() ? "" : ", " + run.start_time) + ")";
}

int compare(const CompareFlags& flags) {
  CompareOptions options = flags.options;
  options.threshold = flags.threshold_percent / 100;
  const RunRecords base = load_run(flags.base, flags.base_run);
  const RunRecords fresh = load_run(flags.fresh, flags.fresh_run);
  const Comparison comparison = compare_runs(base.records, fresh.records, options);

  std::printf("# base %s\n", describe_run(flags.base, base).c_str());
  std::printf("# new  %s\n", describe_run(flags.fresh, fresh).c_str());
  std::cout << comparison_table(comparison, options) << std::flush;
  return regressions(comparison) > 0 ? kChecksFailedExitStatus : 0;
}

}  // namespace

CommandAction add_compare_command(CLI::App& app) {
  auto flags = std::make_shared<CompareFlags>();
  CLI::App* sub = app.add_subcommand(
      "compare", "Compare two results files row by row; exit 1 when a row regressed beyond the threshold");
  sub->add_option("BASE", flags->base, "Results (JSONL) of the baseline")->required();
  sub->add_option("NEW", flags->fresh, "Results (JSONL) to judge")->required();
  sub->add_option("--metric", flags->options.metric, "busbw, bw (p2p), time or images_per_s (train)")
      ->capture_default_str();
  sub->add_option("--threshold", flags->threshold_percent, "Smallest change in percent that counts")
      ->capture_default_str()
      ->check(in_range(0, 1000, false));
  sub->add_option("--alpha", flags->options.alpha, "Significance level of the U test on iteration samples")
      ->capture_default_str()
      ->check(in_range(1e-9, 1, false));
  sub->add_option("--base-run", flags->base_run, "Run id in BASE (default: its latest run)");
  sub->add_option("--new-run", flags->fresh_run, "Run id in NEW (default: its latest run)");
  return [flags] { return compare(*flags); };
}

}  // namespace cclab
