// The CSV report: RFC 4180 (quoted where needed, CRLF line ends), one line per measurement.
#include <cmath>

#include "record_identity.h"
#include "report.h"

namespace cclab {
namespace {

// The columns, in order: the record's fields (a path into objects for nested ones).
const std::vector<std::pair<std::string, std::vector<std::string>>>& columns() {
  static const std::vector<std::pair<std::string, std::vector<std::string>>> list = {
      {"file", {}},
      {"run_id", {"run_id"}},
      {"start_time", {"start_time"}},
      {"kind", {"kind"}},
      {"collective", {"collective"}},
      {"test", {"test"}},
      {"model", {"model"}},
      {"mode", {"mode"}},
      {"impl", {"impl"}},
      {"transport", {"transport"}},
      {"wire_intra", {"wire", "intra"}},
      {"wire_inter", {"wire", "inter"}},
      {"mem", {"mem"}},
      {"dtype", {"dtype"}},
      {"op", {"op"}},
      {"root", {"root"}},
      {"inplace", {"inplace"}},
      {"ranks", {"ranks"}},
      {"nodes", {"nodes"}},
      {"from", {"from"}},
      {"to", {"to"}},
      {"global_batch", {"global_batch"}},
      {"bytes", {"bytes"}},
      {"time_us_median", {"time_us", "median"}},
      {"time_us_min", {"time_us", "min"}},
      {"time_us_max", {"time_us", "max"}},
      {"algbw_gbps", {"algbw_gbps"}},
      {"busbw_gbps", {"busbw_gbps"}},
      {"bw_gbps", {"bw_gbps"}},
      {"latency_us", {"latency_us"}},
      {"pred_us", {"pred_us"}},
      {"wrong", {"wrong"}},
      {"sent_bytes_per_rank", {"sent_bytes_per_rank"}},
      {"predicted_sent_bytes_per_rank", {"predicted_sent_bytes_per_rank"}},
      {"images_per_s", {"images_per_s"}},
      {"speedup", {"speedup"}},
      {"final_loss", {"final_loss"}},
      {"test_accuracy", {"test_accuracy"}},
  };
  return list;
}

std::string quoted(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string cell(const nlohmann::json& record, const std::vector<std::string>& path) {
  const nlohmann::json* value = &record;
  for (const std::string& key : path) {
    if (!value->is_object() || !value->contains(key)) return "";
    value = &(*value)[key];
  }
  if (value->is_null()) return "";
  if (value->is_string()) return value->get<std::string>();
  if (value->is_number_float() && !std::isfinite(value->get<double>())) return "nan";
  return value->dump();
}

}  // namespace

std::string render_csv(const std::vector<ReportInput>& inputs) {
  std::string out;
  for (const auto& [name, path] : columns()) {
    if (!out.empty()) out += ',';
    out += name;
  }
  out += "\r\n";
  for (const ReportInput& input : inputs)
    for (const nlohmann::json& record : input.run.records) {
      if (!is_measurement(record)) continue;
      for (size_t i = 0; i < columns().size(); ++i) {
        const std::vector<std::string>& path = columns()[i].second;
        if (i > 0) out += ',';
        out += quoted(path.empty() ? input.path : cell(record, path));
      }
      out += "\r\n";
    }
  return out;
}

}  // namespace cclab
