// Results as JSON Lines (DESIGN 3.5): one object per line, flushed after each record, so a crash
// loses nothing already measured. Rank 0 writes.
#pragma once

#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cclab/comm.h"
#include "cclab/wire.h"

namespace cclab {

inline constexpr const char* kResultSchema = "cclab.result/1";

/// Host, CPU, GPUs (names, or null) and the versions of everything that can change a number.
nlohmann::json environment_description();

/// The keys every record has: schema, kind, argv, env, and the run's identity: run_id and
/// start_time (the same in every record of one run; CCLAB_RUN_ID and CCLAB_RUN_START hand them to
/// jobs a run starts), the hosts of the ranks (describe_job) and the environment settings that
/// change results (UCX_*, OMPI_MCA_*, NCCL_*, CCLAB_* but the token, OMP_*, MKL_*).
nlohmann::json base_record(const std::string& kind, const std::vector<std::string>& argv);

/// A record's or profile's "wire": {"intra": "sysv+cma", "inter": "tcp"}, a level the job lacks as null.
inline nlohmann::json wire_record(const Wire& wire) {
  auto level = [](const std::string& text) { return text.empty() ? nlohmann::json(nullptr) : nlohmann::json(text); };
  return {{"intra", level(wire.intra)}, {"inter", level(wire.inter)}};
}

/// The "wire" of a record or profile; empty levels where it has none (records older than the field).
inline Wire wire_of_record(const nlohmann::json& record) {
  Wire wire;
  if (!record.is_object() || !record.contains("wire") || !record["wire"].is_object()) return wire;
  const nlohmann::json& levels = record["wire"];
  if (levels.contains("intra") && levels["intra"].is_string()) wire.intra = levels["intra"].get<std::string>();
  if (levels.contains("inter") && levels["inter"].is_string()) wire.inter = levels["inter"].get<std::string>();
  return wire;
}

/// Collective: gathers the host of every rank of `comm` for the records' "hosts".
void describe_job(Comm& comm);

/// This run's id and start time (ISO 8601, UTC), as the records carry them.
const std::string& run_id();
const std::string& run_start_time();

/// Appends records to a JSONL file; an empty path writes nothing. Each record goes out with its
/// newline in one write to a file opened for appending, so a kill or a second writer can never
/// leave half a record joined to another.
class ResultWriter {
 public:
  explicit ResultWriter(const std::string& path);
  ~ResultWriter();
  ResultWriter(const ResultWriter&) = delete;
  ResultWriter& operator=(const ResultWriter&) = delete;
  void write(const nlohmann::json& record);
  bool enabled() const { return fd_ >= 0; }

 private:
  std::string path_;
  int fd_ = -1;
};

/// Reads every record of a JSONL file (for tests and reports).
std::vector<nlohmann::json> read_results(const std::string& path);

/// The records of one run of a results file, which may hold several (runs append).
struct RunRecords {
  std::string run_id, start_time;  // "" for records older than run identities
  std::vector<nlohmann::json> records;
};

/// The latest run of `path` (the run of its last record), or the run `run_id` when not empty.
/// UsageError naming the file, and the line where there is one, for a missing or empty file, a
/// line that is not a cclab record, a schema this cclab does not read, or a run it does not hold.
RunRecords load_run(const std::string& path, const std::string& run_id = "");

}  // namespace cclab
