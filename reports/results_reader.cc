// The reading half of results.h, apart from the writing half: it needs no MPI, UCX or CUDA, so the
// fuzz build (tests/fuzz) compiles it alone.
#include <fstream>

#include "cclab/error.h"
#include "results.h"

namespace cclab {

std::vector<nlohmann::json> read_results(const std::string& path) {
  std::ifstream stream(path);
  if (!stream) throw UsageError("cannot read results file '" + path + "'");
  std::vector<nlohmann::json> records;
  std::string line;
  while (std::getline(stream, line))
    if (!line.empty()) records.push_back(nlohmann::json::parse(line));
  return records;
}

RunRecords load_run(const std::string& path, const std::string& run_id) {
  std::ifstream stream(path);
  if (!stream) throw UsageError(path + ": cannot read it");
  std::vector<nlohmann::json> records;
  std::string line;
  for (size_t number = 1; std::getline(stream, line); ++number) {
    if (line.empty()) continue;
    const std::string where = path + ":" + std::to_string(number) + ": ";
    nlohmann::json record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (record.is_discarded()) throw UsageError(where + "not JSON (cclab writes one JSON object per line)");
    if (!record.is_object() || !record.contains("schema") || !record["schema"].is_string() ||
        !record.contains("kind") || !record["kind"].is_string())
      throw UsageError(where + "not a cclab record (no schema and kind)");
    if (record["schema"] != kResultSchema)
      throw UsageError(where + "schema '" + record["schema"].get<std::string>() + "' is not one this cclab reads (" +
                       kResultSchema + ")");
    // The run's identity picks its records here and titles reports: any other type would fail later,
    // with no file or line to name.
    for (const char* key : {"run_id", "start_time"})
      if (record.contains(key) && !record[key].is_string()) throw UsageError(where + key + " is not a string");
    records.push_back(std::move(record));
  }
  if (records.empty()) throw UsageError(path + ": no records");
  RunRecords run;
  run.run_id = run_id.empty() ? records.back().value("run_id", "") : run_id;
  for (nlohmann::json& record : records)
    if (record.value("run_id", "") == run.run_id) {
      run.start_time = record.value("start_time", "");
      run.records.push_back(std::move(record));
    }
  if (run.records.empty()) throw UsageError(path + ": no run " + run_id);
  return run;
}

}  // namespace cclab
