// load_run (reports/results.h) on any file: it returns the records of one run, every one of them a
// cclab record of that run, or throws UsageError.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "cclab/error.h"
#include "fuzz_input_file.h"
#include "results.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const cclab::fuzz::InputFile file("results.jsonl");
  const std::string& path = file.write(data, size);
  // The latest run, and a run named as the seeds name theirs (compare --base-run).
  for (const std::string run_id : {"", "r1"}) {
    try {
      const cclab::RunRecords run = cclab::load_run(path, run_id);
      if (run.records.empty() || (!run_id.empty() && run.run_id != run_id)) std::abort();
      for (const nlohmann::json& record : run.records)
        if (!record.is_object() || record.value("run_id", "") != run.run_id) std::abort();
    } catch (const cclab::UsageError&) {
    }
  }
  return 0;
}
