// The Markdown report: what a CI job page shows of a run (GitHub-flavoured tables).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "record_identity.h"
#include "report.h"
#include "table.h"
#include "text_format.h"

namespace cclab {
namespace {

std::string number(double value, const char* format = "%.3g") {
  return std::isfinite(value) ? format_text(format, value) : "-";
}

std::string text_of(const nlohmann::json& record, const char* key) {
  if (!record.contains(key) || record[key].is_null()) return "-";
  const nlohmann::json& value = record[key];
  return value.is_string() ? value.get<std::string>() : value.dump();
}

double number_of(const nlohmann::json& record, const char* key) {
  return record.contains(key) && record[key].is_number() ? record[key].get<double>() : NAN;
}

std::string run_line(const ReportInput& input) {
  const nlohmann::json& first = input.run.records.front();
  std::string hosts;
  if (first.contains("hosts"))
    for (const auto& host : first["hosts"]) {
      const std::string name = host.get<std::string>();
      if (hosts.find(name) == std::string::npos) hosts += (hosts.empty() ? "" : ", ") + name;
    }
  std::string line = "`" + input.path + "`, run `" + (input.run.run_id.empty() ? "-" : input.run.run_id) + "`";
  if (!input.run.start_time.empty()) line += " started " + input.run.start_time;
  if (!hosts.empty()) line += " on " + hosts;
  if (first.contains("env"))
    line += " (cclab " + text_of(first["env"], "cclab") + ", git " + text_of(first["env"], "git") + ")";
  return line + "\n\n";
}

// Collective rows grouped by everything but implementation and size.
void collective_tables(const std::vector<nlohmann::json>& records, std::string& out) {
  for (const auto& [title, group] : collective_groups(records)) {
    out += "### " + title +
           "\n\n| impl | transport | sizes | busbw avg GB/s | busbw peak GB/s (at B) | wrong | "
           "model error, median |\n|---|---|---:|---:|---:|---:|---:|\n";
    std::map<std::string, std::vector<const nlohmann::json*>> by_impl;
    std::vector<std::string> impls;
    for (const nlohmann::json* record : group) {
      const std::string impl = text_of(*record, "impl") + "\x1f" + transport_column(*record);  // with its wire
      if (!by_impl.count(impl)) impls.push_back(impl);
      by_impl[impl].push_back(record);
    }
    for (const std::string& impl : impls) {
      double sum = 0, peak = -1, peak_bytes = 0;
      bool checked = false;
      uint64_t wrong = 0;
      std::vector<double> errors;
      for (const nlohmann::json* record : by_impl[impl]) {
        const double busbw = number_of(*record, "busbw_gbps");
        sum += busbw;
        if (busbw > peak) peak = busbw, peak_bytes = number_of(*record, "bytes");
        if ((*record)["wrong"].is_number()) checked = true, wrong += (*record)["wrong"].get<uint64_t>();
        const double predicted = number_of(*record, "pred_us"), measured = (*record)["time_us"]["median"];
        if (std::isfinite(predicted) && measured > 0) errors.push_back(std::abs(predicted - measured) / measured);
      }
      std::sort(errors.begin(), errors.end());
      const std::string error = errors.empty() ? "-" : number(100 * errors[errors.size() / 2], "%.0f%%");
      const size_t split = impl.find('\x1f');
      out += "| " + impl.substr(0, split) + " | " + impl.substr(split + 1) + " | " +
             std::to_string(by_impl[impl].size()) + " | " + number(sum / double(by_impl[impl].size())) + " | " +
             number(peak) + " (" + number(peak_bytes, "%.0f") + ") | " +
             (checked ? std::to_string(wrong) : std::string("not checked")) + " | " + error + " |\n";
    }
    out += "\n";
  }
}

void train_table(const std::vector<nlohmann::json>& records, std::string& out) {
  std::string rows;
  for (const nlohmann::json& record : records) {
    if (record.value("kind", "") != "train") continue;
    rows += "| " + record_label(record) + " | " + number(number_of(record, "images_per_s")) + " | " +
            number(number_of(record, "speedup")) + " | " + number(number_of(record, "final_loss"), "%.4f") + " | " +
            number(number_of(record, "test_accuracy"), "%.4f") + " | " + text_of(record, "sent_bytes_per_rank") +
            " | " + text_of(record, "predicted_sent_bytes_per_rank") + " |\n";
  }
  if (rows.empty()) return;
  out +=
      "### Training\n\n| run | images/s | speedup | final loss | test accuracy | bytes/step sent | predicted |\n"
      "|---|---:|---:|---:|---:|---:|---:|\n" +
      rows + "\n";
}

void p2p_table(const std::vector<nlohmann::json>& records, std::string& out) {
  std::string rows;
  for (const nlohmann::json& record : records) {
    if (record.value("kind", "") != "p2p") continue;
    rows += "| " + record_label(record) + " | " + number(record["time_us"]["median"].get<double>()) + " | " +
            number(number_of(record, "bw_gbps")) + " |\n";
  }
  if (rows.empty()) return;
  out += "### Point to point\n\n| row | median us | GB/s |\n|---|---:|---:|\n" + rows + "\n";
}

void gates(const std::vector<nlohmann::json>& records, std::string& out) {
  for (const nlohmann::json& record : records) {
    if (record.value("kind", "") != "summary") continue;
    out += std::string("**Gates: ") + (record.value("passed", false) ? "passed" : "FAILED") + "**";
    out += record["wrong"].is_null() ? " (results not checked)" : " - wrong elements: " + record["wrong"].dump();
    if (record.contains("min_busbw_gbps")) out += " - --min-busbw " + record["min_busbw_gbps"].dump() + " GB/s";
    out += "\n\n";
  }
}

}  // namespace

std::string render_markdown(const std::vector<ReportInput>& inputs) {
  std::string out = "## cclab report\n\n";
  for (const ReportInput& input : inputs) {
    out += run_line(input);
    gates(input.run.records, out);
    collective_tables(input.run.records, out);
    p2p_table(input.run.records, out);
    train_table(input.run.records, out);
  }
  return out;
}

}  // namespace cclab
