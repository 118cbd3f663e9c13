// `cclab compare BASE NEW` (DESIGN 3.9): join two runs' records on what they measured, and tell a
// regression from noise.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace cclab {

struct CompareOptions {
  std::string metric = "busbw";  // busbw (collective, p2p bw), time (collective, p2p) or images_per_s (train)
  double threshold = 0.05;       // a change smaller than this fraction is no change
  double alpha = 0.05;           // where both rows carry samples: the U test's significance level
};

enum class Verdict { same, improved, regressed, inconclusive };
const char* verdict_name(Verdict verdict);

struct ComparedRow {
  std::string kind;      // "collective", "p2p", "train"
  std::string identity;  // "allreduce ring ucx+shm f32 sum ranks=2 bytes=1048576"
  double base = 0, fresh = 0;
  double change = 0;            // fresh / base - 1, signed so that positive is better
  std::optional<double> p;      // the U test's p-value where both rows carry samples
  Verdict verdict = Verdict::same;
};

struct Comparison {
  std::string metric_key;  // the record key compared: "busbw_gbps", ...
  bool higher_is_better = true;
  std::vector<ComparedRow> rows;   // in the base run's order
  size_t only_in_base = 0, only_in_fresh = 0;
};

/// The comparison as compare prints it: the method, a row per joined record, the tally.
std::string comparison_table(const Comparison& comparison, const CompareOptions& options);
/// The rows that regressed.
size_t regressions(const Comparison& comparison);

/// Compares the records of one run with another's. A change beyond the threshold is a regression
/// or an improvement; where both rows carry per-iteration samples it must also pass the U test,
/// or it is inconclusive (noise). UsageError when the metric is unknown or no row is in both.
Comparison compare_runs(const std::vector<nlohmann::json>& base, const std::vector<nlohmann::json>& fresh,
                        const CompareOptions& options);

}  // namespace cclab
