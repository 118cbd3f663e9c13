// Suite files (DESIGN 3.9): a list of cclab runs in TOML, run as one (`cclab suite run FILE`).
//
//   name = "smoke"                        # optional; names the results file by default
//   results = "results/smoke.jsonl"       # optional
//   [[run]]
//   name = "allreduce ring beside mpi"    # optional
//   command = "bench allreduce -n 2 --impl ring,mpi -e 4M --check"   # split at spaces, no shell
#pragma once

#include <string>
#include <vector>

namespace cclab {

struct SuiteRun {
  std::string name;
  std::vector<std::string> args;  // after "cclab": "bench", "allreduce", ...
  std::string where;              // "FILE:LINE", for messages
};

struct Suite {
  std::string name, results;
  std::vector<SuiteRun> runs;
};

/// Reads and checks a suite file: UsageError "FILE:LINE: ..." for TOML it cannot parse, an unknown
/// key, a run without a command, or a command that is not a bench or train run, or that names
/// its own --json (the suite writes every run's records to its one results file).
Suite read_suite(const std::string& path);

}  // namespace cclab
