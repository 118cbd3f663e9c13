// `cclab report FILE...` (DESIGN 3.5, 3.9): one run of each results file rendered for people and
// for CI: a Markdown summary for a job page, CSV for spreadsheets, JUnit XML for test dashboards.
#pragma once

#include <string>
#include <vector>

#include "results.h"

namespace cclab {

/// One input of a report: a results file and the run of it that is reported.
struct ReportInput {
  std::string path;
  RunRecords run;
};

/// Per group of rows that differ only in implementation and size: each implementation's sizes,
/// busbw (average, peak), wrong elements and the model's error; p2p and train rows in tables;
/// the gates of each run (wrong elements, --min-busbw) with their verdicts.
std::string render_markdown(const std::vector<ReportInput>& inputs);
/// One line per measurement record (collective, p2p, train), the union of their main fields.
std::string render_csv(const std::vector<ReportInput>& inputs);
/// One self-contained HTML page with interactive charts (Vega-Lite, inlined): busbw and time
/// against size per implementation with the model's prediction and error, the p2p pair matrix,
/// and training's speedup, step split and bytes per phase; a table under each chart. UsageError in
/// a build without the chart libraries.
std::string render_html(const std::vector<ReportInput>& inputs);
/// A testsuite per input: a test case per checked row (failing with its wrong elements), per
/// training run (failing on a loss that is not finite) and per gate (failing with the reason).
std::string render_junit(const std::vector<ReportInput>& inputs);

}  // namespace cclab
