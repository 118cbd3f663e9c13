// The run of `cclab plan` (DESIGN 3.10): its inputs (measured on the spot where no file is given),
// the ranked table, the plan records, and --validate's runs of the top strategies with `cclab train`.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "planner/planner.h"

namespace cclab::train {

struct PlanOptions {
  std::string model = "lenet5";
  size_t ranks = 0;  // 0: the --cluster's nodes x ranks per node
  size_t batch = 64;
  int threads = 1;
  std::string profile_path;  // cclab bench p2p --fit; empty: measured on the spot (local plans)
  std::string layers_path;   // cclab train --profile-layers FILE; empty: measured on the spot
  std::string json_path;
  std::vector<std::string> modes;  // only these modes (empty: every one)
  std::string cluster;             // --cluster spec; empty: this host
  size_t validate = 0;             // run the top K with cclab train (0: none)
  size_t validate_steps = 20;
  size_t validate_rounds = 3;      // each validated strategy runs this often, in turn; its median run counts
  double timeout_s = 60;
};

/// The machines of a --cluster spec: "nodes=2,ranks-per-node=4,intra-alpha-us=0.5,intra-gbps=10,
/// inter-alpha-us=5,inter-gbps=1.25[,compute=1][,reduce-gbps=10]". UsageError for anything else.
ClusterShape parse_cluster(const std::string& spec);

/// Checks every option and file before any work (UsageError: one line, exit 2).
void check_plan_options(const PlanOptions& options);

/// Plans (measuring what no file gives), prints the table to `out`, writes the records, validates.
/// `argv`: this command line (records; argv[0] relaunches cclab for measurements and validation).
/// Returns the exit status.
int run_plan(const PlanOptions& options, const std::vector<std::string>& argv, std::ostream& out);

}  // namespace cclab::train
