// Runs `cclab train` through the binary (CCLAB_BINARY) for tests, and reads back its train record.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "results.h"
#include "run_command.h"

namespace cclab {

inline RunResult run(const std::string& arguments) { return run_command(std::string(CCLAB_BINARY) + " " + arguments); }

struct TrainRun {
  nlohmann::json record;  // the train record (null if the run wrote none)
  std::string output;
};

/// `cclab <arguments> --json FILE`, expecting success; `tag` keeps concurrent tests' files apart.
inline TrainRun run_training(const std::string& arguments, const std::string& tag) {
  const std::string json =
      (std::filesystem::temp_directory_path() / ("cclab_train_" + tag + "_" + std::to_string(getpid()) + ".jsonl"))
          .string();
  std::filesystem::remove(json);
  TrainRun result;
  const RunResult process = run(arguments + " --json " + json);
  result.output = process.output;
  EXPECT_EQ(process.status, 0) << arguments << "\n" << process.output;
  if (std::filesystem::exists(json))
    for (const nlohmann::json& r : read_results(json))
      if (r["kind"] == "train") result.record = r;
  std::filesystem::remove(json);
  EXPECT_FALSE(result.record.is_null()) << arguments << "\n" << process.output;
  return result;
}

/// The record's loss of every step, in order.
inline std::vector<double> step_losses(const nlohmann::json& record) {
  return record["step_losses"].get<std::vector<double>>();
}

/// The parameter-server phases of a ps or fedavg record: measured bytes equal predicted and formula.
inline void expect_push_and_pull_as_predicted(const nlohmann::json& record, const std::string& what) {
  for (const char* phase : {"push", "pull"}) {
    const nlohmann::json& traffic = record["phases"][phase];
    EXPECT_GT(traffic["sent_bytes_per_rank"].get<double>(), 0) << what << " " << phase;
    EXPECT_EQ(traffic["sent_bytes_per_rank"], traffic["predicted_sent_bytes_per_rank"]) << what << " " << phase;
    EXPECT_EQ(traffic["textbook_sent_bytes_per_rank"], traffic["predicted_sent_bytes_per_rank"])
        << what << " " << phase;
  }
}

}  // namespace cclab
