#include "compare.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "cclab/error.h"
#include "mann_whitney.h"
#include "record_identity.h"
#include "results.h"
#include "text_format.h"

namespace cclab {
namespace {

struct Metric {
  std::string key;  // the record's field
  bool higher_is_better;
  std::vector<std::string> kinds;
};

Metric metric_of(const std::string& name) {
  if (name == "busbw") return {"busbw_gbps", true, {"collective"}};
  if (name == "bw") return {"bw_gbps", true, {"p2p"}};
  if (name == "time") return {"time_us", false, {"collective", "p2p"}};
  if (name == "images_per_s") return {"images_per_s", true, {"train"}};
  throw UsageError("--metric takes busbw, bw, time or images_per_s, not '" + name + "'");
}

double metric_value(const nlohmann::json& record, const Metric& metric) {
  const nlohmann::json& value = record[metric.key];
  if (value.is_object()) return value["median"].get<double>();  // time_us
  return value.is_number() ? value.get<double>() : NAN;
}

bool has_kind(const Metric& metric, const nlohmann::json& record) {
  const std::string kind = record.value("kind", "");
  for (const std::string& wanted : metric.kinds)
    if (kind == wanted && record.contains(metric.key)) return true;
  return false;
}

}  // namespace

const char* verdict_name(Verdict verdict) {
  switch (verdict) {
    case Verdict::same:
      return "same";
    case Verdict::improved:
      return "improved";
    case Verdict::regressed:
      return "REGRESSED";
    case Verdict::inconclusive:
      return "inconclusive";
  }
  return "?";
}

Comparison compare_runs(const std::vector<nlohmann::json>& base, const std::vector<nlohmann::json>& fresh,
                        const CompareOptions& options) {
  const Metric metric = metric_of(options.metric);
  Comparison comparison;
  comparison.metric_key = metric.key;
  comparison.higher_is_better = metric.higher_is_better;
  std::map<std::string, const nlohmann::json*> fresh_rows;
  for (const nlohmann::json& record : fresh)
    if (has_kind(metric, record)) fresh_rows[record_key(record)] = &record;
  size_t matched = 0;
  for (const nlohmann::json& record : base) {
    if (!has_kind(metric, record)) continue;
    const auto found = fresh_rows.find(record_key(record));
    if (found == fresh_rows.end()) {
      ++comparison.only_in_base;
      continue;
    }
    ++matched;
    const nlohmann::json& other = *found->second;
    ComparedRow row;
    row.kind = record["kind"];
    row.identity = record_label(record);
    // The wire is not part of what joins rows (older records lack it), but a change of wire explains
    // a change of speed: say so on the row.
    if (const Wire was = wire_of_record(record), is = wire_of_record(other); !was.empty() && !is.empty() && was != is)
      row.identity.append(" [wire ").append(was.short_text()).append(" -> ").append(is.short_text()).append("]");
    row.base = metric_value(record, metric);
    row.fresh = metric_value(other, metric);
    const double ratio = row.fresh / row.base;
    row.change = metric.higher_is_better ? ratio - 1 : 1 / ratio - 1;
    // Rows that carry their iterations' times are judged on them too: a change the U test cannot
    // tell from noise is inconclusive, never a regression.
    if (record.contains("samples_us") && other.contains("samples_us"))
      row.p = mann_whitney_p(record["samples_us"].get<std::vector<double>>(),
                             other["samples_us"].get<std::vector<double>>());
    if (!std::isfinite(row.change) || std::abs(row.change) <= options.threshold)
      row.verdict = Verdict::same;
    else if (row.p && *row.p >= options.alpha)
      row.verdict = Verdict::inconclusive;
    else
      row.verdict = row.change > 0 ? Verdict::improved : Verdict::regressed;
    comparison.rows.push_back(std::move(row));
    fresh_rows.erase(found);
  }
  comparison.only_in_fresh = fresh_rows.size();
  if (matched == 0)
    throw UsageError("no " + metric.key + " rows measured the same thing in both runs (compare matches " +
                     "collective, impl, transport, dtype, op, ranks, bytes, ...; train: model, mode, ranks, batch)");
  return comparison;
}

std::string comparison_table(const Comparison& comparison, const CompareOptions& options) {
  std::string out = format_text(
      "# %s (%s is better); a change beyond %g%% counts; rows with iteration samples must also "
      "pass the Mann-Whitney U test at p < %g\n",
      comparison.metric_key.c_str(), comparison.higher_is_better ? "higher" : "lower", 100 * options.threshold,
      options.alpha);
  int width = 8;
  for (const ComparedRow& row : comparison.rows) width = std::max(width, int(row.identity.size()));
  out += format_text("%-*s %12s %12s %8s %7s  %s\n", width, "# row", "base", "new", "change", "p", "verdict");
  size_t counts[4] = {0, 0, 0, 0};
  for (const ComparedRow& row : comparison.rows) {
    ++counts[int(row.verdict)];
    const std::string p = row.p ? format_text("%.3f", *row.p) : "-";
    out += format_text("%-*s %12.4g %12.4g %+7.1f%% %7s  %s\n", width, row.identity.c_str(), row.base, row.fresh,
                       100 * row.change, p.c_str(), verdict_name(row.verdict));
  }
  out += format_text("# %zu rows: %zu regressed, %zu improved, %zu inconclusive (noise), %zu same",
                     comparison.rows.size(), counts[int(Verdict::regressed)], counts[int(Verdict::improved)],
                     counts[int(Verdict::inconclusive)], counts[int(Verdict::same)]);
  if (comparison.only_in_base || comparison.only_in_fresh)
    out += format_text("; %zu only in base, %zu only in new", comparison.only_in_base, comparison.only_in_fresh);
  return out + "\n";
}

size_t regressions(const Comparison& comparison) {
  return size_t(std::count_if(comparison.rows.begin(), comparison.rows.end(),
                              [](const ComparedRow& row) { return row.verdict == Verdict::regressed; }));
}

}  // namespace cclab
