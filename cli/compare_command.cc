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
  std::printf("# %s (%s is better); a change beyond %g%% counts; rows with iteration samples must also pass the "
              "Mann-Whitney U test at p < %g\n",
              comparison.metric_key.c_str(), comparison.higher_is_better ? "higher" : "lower", flags.threshold_percent,
              options.alpha);
  size_t width = 8;
  for (const ComparedRow& row : comparison.rows) width = std::max(width, row.identity.size());
  std::printf("%-*s %12s %12s %8s %7s  %s\n", int(width), "# row", "base", "new", "change", "p", "verdict");
  size_t counts[4] = {0, 0, 0, 0};
  for (const ComparedRow& row : comparison.rows) {
    ++counts[int(row.verdict)];
    char p[16] = "-";
    if (row.p) std::snprintf(p, sizeof p, "%.3f", *row.p);
    std::printf("%-*s %12.4g %12.4g %+7.1f%% %7s  %s\n", int(width), row.identity.c_str(), row.base, row.fresh,
                100 * row.change, p, verdict_name(row.verdict));
  }
  std::printf("# %zu rows: %zu regressed, %zu improved, %zu inconclusive (noise), %zu same", comparison.rows.size(),
              counts[int(Verdict::regressed)], counts[int(Verdict::improved)], counts[int(Verdict::inconclusive)],
              counts[int(Verdict::same)]);
  if (comparison.only_in_base || comparison.only_in_fresh)
    std::printf("; %zu only in base, %zu only in new", comparison.only_in_base, comparison.only_in_fresh);
  std::printf("\n");
  return counts[int(Verdict::regressed)] > 0 ? kChecksFailedExitStatus : 0;
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
