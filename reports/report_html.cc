// The HTML report: one self-contained page with interactive Vega-Lite charts (the libraries are
// inlined, so it opens offline) and a table under each chart.
#include <algorithm>
#include <cmath>
#include <map>

#include "cclab/error.h"
#include "chart_libraries.h"
#include "record_identity.h"
#include "report.h"
#include "table.h"
#include "text_format.h"

namespace cclab {
namespace {

// JSON placed inside <script>: "</" would end the element.
std::string script_json(const nlohmann::json& value) {
  std::string text = value.dump();
  for (size_t at = 0; (at = text.find("</", at)) != std::string::npos; at += 3) text.replace(at, 2, "<\\/");
  return text;
}

std::string cell_text(const nlohmann::json& value) {
  if (value.is_null()) return "-";
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_float()) return format_text("%.4g", value.get<double>());
  return value.dump();
}

// A table of `rows` (objects) with `columns` as headers, in that order.
std::string table(const std::vector<nlohmann::json>& rows, const std::vector<std::string>& columns) {
  std::string out = "<table><tr>";
  for (const std::string& column : columns) out += "<th>" + xml_escaped(column) + "</th>";
  out += "</tr>";
  for (const nlohmann::json& row : rows) {
    out += "<tr>";
    for (const std::string& column : columns)
      out += "<td>" + xml_escaped(cell_text(row.value(column, nlohmann::json()))) + "</td>";
    out += "</tr>";
  }
  return out + "</table>\n";
}

// A log axis; sizes read best in SI units (1k, 1M), rates and times as plain numbers.
nlohmann::json log_axis(const std::string& field, const std::string& title) {
  nlohmann::json axis = {{"field", field}, {"type", "quantitative"}, {"scale", {{"type", "log"}}}, {"title", title}};
  if (field == "bytes") axis["axis"] = {{"format", "~s"}};
  return axis;
}

double number_at(const nlohmann::json& record, const char* key) {
  return record.contains(key) && record[key].is_number() ? record[key].get<double>() : NAN;
}

class Page {
 public:
  // Adds a chart of `spec` (Vega-Lite, without data) over `rows`, and the table of the rows.
  void chart(const std::string& title, nlohmann::json spec, const std::vector<nlohmann::json>& rows,
             const std::vector<std::string>& columns) {
    const std::string id = "chart" + std::to_string(charts_.size());
    spec["$schema"] = "https://vega.github.io/schema/vega-lite/v5.json";
    spec["title"] = title;
    spec["data"] = {{"values", rows}};
    if (!spec.contains("width")) spec["width"] = 560;
    if (!spec.contains("height")) spec["height"] = 280;
    charts_.push_back({{"id", id}, {"spec", spec}});
    body_ += "<div class=\"chart\" id=\"" + id + "\"></div>\n<details><summary>table</summary>" + table(rows, columns) +
             "</details>\n";
  }
  void html(const std::string& text) { body_ += text; }

  std::string render(const ChartLibraries& libraries) const {
    return std::string("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>cclab report</title>\n") +
           "<style>body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;"
           "font-size:13px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}.chart{margin:1em 0}"
           "</style>\n<script>" +
           libraries.vega + "</script>\n<script>" + libraries.vega_lite + "</script>\n<script>" + libraries.vega_embed +
           "</script>\n</head><body>\n<h1>cclab report</h1>\n" + body_ +
           "<script>\nconst charts = " + script_json(charts_) + ";\n" +
           "Promise.all(charts.map(c => vegaEmbed('#' + c.id, c.spec, {renderer: 'svg', actions: false})))\n"
           "  .then(() => { document.body.dataset.charts = 'drawn'; })\n"
           "  .catch(error => { console.error('cclab report: ' + error); });\n</script>\n</body></html>\n";
  }

 private:
  nlohmann::json charts_ = nlohmann::json::array();
  std::string body_;
};

// Busbw and time against size per implementation, and the model's error, per group of rows that
// differ only in implementation and size.
void collective_charts(const std::vector<nlohmann::json>& records, Page& page) {
  for (const auto& [title, group] : collective_groups(records)) {
    std::vector<nlohmann::json> rows, times, errors;
    nlohmann::json implementations = nlohmann::json::array();  // one color per implementation in every chart
    for (const nlohmann::json* record : group) {
      const std::string impl =
          (*record)["impl"].get<std::string>() + " (" + transport_column(*record) + ")";  // with its wire
      if (std::find(implementations.begin(), implementations.end(), impl) == implementations.end())
        implementations.push_back(impl);
      const double measured = (*record)["time_us"]["median"].get<double>(), predicted = number_at(*record, "pred_us");
      rows.push_back({{"impl", impl},
                      {"bytes", (*record)["bytes"]},
                      {"time_us", measured},
                      {"pred_us", (*record)["pred_us"]},
                      {"busbw_gbps", (*record)["busbw_gbps"]},
                      {"wrong", (*record)["wrong"]}});
      times.push_back({{"impl", impl}, {"bytes", (*record)["bytes"]}, {"series", "measured"}, {"time_us", measured}});
      if (std::isfinite(predicted)) {
        times.push_back(
            {{"impl", impl}, {"bytes", (*record)["bytes"]}, {"series", "predicted"}, {"time_us", predicted}});
        errors.push_back(
            {{"impl", impl}, {"bytes", (*record)["bytes"]}, {"error_pct", 100 * (predicted - measured) / measured}});
      }
    }
    page.html("<h3>" + xml_escaped(title) + "</h3>\n");
    const nlohmann::json color = {
        {"field", "impl"}, {"type", "nominal"}, {"title", "implementation"}, {"scale", {{"domain", implementations}}}};
    page.chart(
        "busbw against size",
        {{"mark", {{"type", "line"}, {"point", true}, {"tooltip", true}}},
         {"transform", {{{"filter", "datum.busbw_gbps > 0"}}}},
         {"encoding",
          {{"x", log_axis("bytes", "size (B)")}, {"y", log_axis("busbw_gbps", "busbw (GB/s)")}, {"color", color}}}},
        rows, {"impl", "bytes", "time_us", "pred_us", "busbw_gbps", "wrong"});
    page.chart("time against size, measured and predicted by the cost model",
               {{"mark", {{"type", "line"}, {"point", true}, {"tooltip", true}}},
                {"encoding",
                 {{"x", log_axis("bytes", "size (B)")},
                  {"y", log_axis("time_us", "median time (us)")},
                  {"color", color},
                  {"strokeDash",
                   {{"field", "series"},
                    {"type", "nominal"},
                    {"title", "series"},
                    {"legend", {{"symbolType", "stroke"}, {"symbolStrokeColor", "#444"}}}}}}}},
               times, {"impl", "bytes", "series", "time_us"});
    if (!errors.empty())
      page.chart("the cost model's error: (predicted - measured) / measured",
                 {{"mark", {{"type", "line"}, {"point", true}, {"tooltip", true}}},
                  {"encoding",
                   {{"x", log_axis("bytes", "size (B)")},
                    {"y", {{"field", "error_pct"}, {"type", "quantitative"}, {"title", "error (%)"}}},
                    {"color", color}}}},
                 errors, {"impl", "bytes", "error_pct"});
  }
}

// The pair matrix at the largest size of each p2p test, as a heatmap.
void p2p_charts(const std::vector<nlohmann::json>& records, Page& page) {
  std::map<std::string, std::vector<nlohmann::json>> by_test;
  std::map<std::string, double> largest;
  for (const nlohmann::json& record : records)
    if (record.value("kind", "") == "p2p") {
      const std::string test = record["test"];
      largest[test] = std::max(largest[test], record["bytes"].get<double>());
    }
  for (const nlohmann::json& record : records) {
    if (record.value("kind", "") != "p2p") continue;
    const std::string test = record["test"];
    if (record["bytes"].get<double>() != largest[test]) continue;
    const bool latency = record.contains("latency_us");
    by_test[test].push_back({{"from", record["from"]},
                             {"to", record["to"]},
                             {"bytes", record["bytes"]},
                             {"value", latency ? record["latency_us"] : record["bw_gbps"]}});
  }
  for (const auto& [test, rows] : by_test) {
    const std::string unit = test == "latency" ? "median latency (us)" : "GB/s";
    page.html("<h3>point to point: " + xml_escaped(test) + "</h3>\n");
    page.chart("pairs at " + std::to_string(size_t(largest[test])) + " B: " + unit,
               {{"width", 360},
                {"height", 360},
                {"layer",
                 {{{"mark", {{"type", "rect"}, {"tooltip", true}}},
                   {"encoding", {{"color", {{"field", "value"}, {"type", "quantitative"}, {"title", unit}}}}}},
                  {{"mark", {{"type", "text"}, {"fontSize", 10}}},
                   {"encoding", {{"text", {{"field", "value"}, {"type", "quantitative"}, {"format", ".3g"}}}}}}}},
                {"encoding",
                 {{"x", {{"field", "to"}, {"type", "ordinal"}}}, {"y", {{"field", "from"}, {"type", "ordinal"}}}}}},
               rows, {"from", "to", "bytes", "value"});
  }
}

// Training: speedup per mode, the step split into compute, communication and idle, and bytes per
// phase measured beside the prediction and the textbook formula.
void train_charts(const std::vector<nlohmann::json>& records, Page& page) {
  std::vector<nlohmann::json> speedups, steps, bytes;
  for (const nlohmann::json& record : records) {
    if (record.value("kind", "") != "train") continue;
    const std::string run = record["mode"].get<std::string>() + " x" + std::to_string(record["ranks"].get<int>());
    if (record["speedup"].is_number())
      speedups.push_back({{"mode", record["mode"]}, {"ranks", record["ranks"]}, {"speedup", record["speedup"]}});
    for (const char* part : {"compute", "comm", "idle"})
      steps.push_back({{"run", run}, {"part", part}, {"seconds", record["step_time_s"][part]}});
    for (const auto& [phase, figures] : record["phases"].items()) {
      if (!figures.contains("sent_bytes_per_rank")) continue;
      bytes.push_back(
          {{"run", run}, {"phase", phase}, {"series", "measured"}, {"bytes", figures["sent_bytes_per_rank"]}});
      bytes.push_back({{"run", run},
                       {"phase", phase},
                       {"series", "predicted"},
                       {"bytes", figures["predicted_sent_bytes_per_rank"]}});
      if (figures.contains("textbook_sent_bytes_per_rank"))
        bytes.push_back({{"run", run},
                         {"phase", phase},
                         {"series", "textbook formula"},
                         {"bytes", figures["textbook_sent_bytes_per_rank"]}});
    }
  }
  if (steps.empty()) return;
  page.html("<h3>training</h3>\n");
  if (!speedups.empty())
    page.chart("speedup over one rank",
               {{"mark", {{"type", "line"}, {"point", true}, {"tooltip", true}}},
                {"encoding",
                 {{"x", {{"field", "ranks"}, {"type", "quantitative"}}},
                  {"y", {{"field", "speedup"}, {"type", "quantitative"}}},
                  {"color", {{"field", "mode"}, {"type", "nominal"}}}}}},
               speedups, {"mode", "ranks", "speedup"});
  page.chart("step time: compute, communication, idle (busiest rank)",
             {{"mark", {{"type", "bar"}, {"tooltip", true}}},
              {"encoding",
               {{"x", {{"field", "run"}, {"type", "nominal"}, {"title", "mode x ranks"}}},
                {"y", {{"field", "seconds"}, {"type", "quantitative"}, {"stack", "zero"}}},
                {"color", {{"field", "part"}, {"type", "nominal"}}}}}},
             steps, {"run", "part", "seconds"});
  if (!bytes.empty())
    page.chart("bytes sent per step and rank, by phase: measured, predicted (the simulator) and the textbook formula",
               {{"mark", {{"type", "bar"}, {"tooltip", true}}},
                {"encoding",
                 {{"x", {{"field", "phase"}, {"type", "nominal"}}},
                  {"xOffset", {{"field", "series"}, {"type", "nominal"}}},
                  {"y", {{"field", "bytes"}, {"type", "quantitative"}}},
                  {"color", {{"field", "series"}, {"type", "nominal"}}},
                  {"row", {{"field", "run"}, {"type", "nominal"}}}}},
                {"height", 120}},
               bytes, {"run", "phase", "series", "bytes"});
}

}  // namespace

std::string render_html(const std::vector<ReportInput>& inputs) {
  const std::optional<ChartLibraries> libraries = chart_libraries();
  if (!libraries)
    throw UsageError(
        "this build has no chart libraries for HTML reports: run ci/install-deps.sh (npm ci in "
        "reports/web) and rebuild; --format md, csv and junit work without them");
  Page page;
  for (const ReportInput& input : inputs) {
    page.html("<h2>" + xml_escaped(input.path) + "</h2>\n<p>run " + xml_escaped(input.run.run_id) + " started " +
              xml_escaped(input.run.start_time) + "</p>\n");
    for (const nlohmann::json& record : input.run.records)
      if (record.value("kind", "") == "summary")
        page.html(std::string("<p><b>gates: ") + (record.value("passed", false) ? "passed" : "FAILED") +
                  "</b> (wrong elements: " + xml_escaped(cell_text(record["wrong"])) + ")</p>\n");
    collective_charts(input.run.records, page);
    p2p_charts(input.run.records, page);
    train_charts(input.run.records, page);
  }
  return page.render(*libraries);
}

}  // namespace cclab
