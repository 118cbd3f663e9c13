// `cclab plan` as a user runs it: the layer-times file `cclab train --profile-layers FILE` writes,
// the planner's bytes and memory against what the trainer measures for every mode at 2 and 3 ranks
// (--validate runs them), a what-if cluster's plan printed identically twice, and bad input refused.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cclab/cost_model.h"
#include "layer_times.h"
#include "results.h"
#include "run_command.h"

namespace cclab {
namespace {

RunResult run(const std::string& arguments) { return run_command(std::string(CCLAB_BINARY) + " " + arguments); }

class PlanCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("cclab_plan_cli_" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    // Any profile does for bytes and for determinism: these tests check no times.
    CostProfile profile;
    profile.cached.intra_node = profile.cached.inter_node = {1.0, 1e-3};
    profile.streaming = profile.cached;
    save_profile(path("profile.json"), profile);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Layer times of lenet5 at `batch`, measured by the trainer (a short run).
  std::string layers(size_t batch) {
    const std::string file = path("layers" + std::to_string(batch) + ".json");
    const RunResult result =
        run("train --model lenet5 --batch " + std::to_string(batch) +
            " --threads 1 --steps 3 --no-eval --data synthetic:1x28x28:" + std::to_string(batch * 3) +
            " --profile-layers " + file);
    EXPECT_EQ(result.status, 0) << result.output;
    return file;
  }

  std::filesystem::path dir_;
};

TEST_F(PlanCli, ProfileLayersWritesAFileThePlannerReads) {
  const std::string file = layers(16);
  const train::LayerTimes times = train::load_layer_times(file);
  const train::ModelPlan plan = train::plan_model("lenet5", {1, 28, 28});
  EXPECT_EQ(times.batch, 16u);
  EXPECT_EQ(times.threads, 1);
  EXPECT_EQ(times.steps, 2u);  // the first step is the warm-up
  ASSERT_EQ(times.layers.size(), plan.layers.size());
  EXPECT_NO_THROW(train::check_layer_times_match(times, plan, "lenet5", 16, 1, file));
  EXPECT_GT(times.forward_s() + times.backward_s(), 0);
  const RunResult several = run("train --model lenet5 -n 2 --steps 2 --profile-layers " + path("x.json"));
  EXPECT_EQ(several.status, 2) << several.output;
}

// --validate runs each strategy with cclab train (--repeat times); the plan exits 1 and says so if any
// run's measured phase differs from the planner's bytes, and the records carry both, and the memory
// the runs' ranks held beside the predicted.
TEST_F(PlanCli, PlannedBytesEqualTheTrainersMeasuredBytesForEveryMode) {
  const std::string times = layers(13);  // shards and micro-batches of unequal sizes
  for (int ranks : {2, 3}) {
    for (const std::string selection :
         {"data,tensor,hybrid,ps --validate 5 --repeat 1", "pipeline --validate 1 --repeat 2"}) {
      const std::string json = path("plan" + std::to_string(ranks) + ".jsonl");
      std::filesystem::remove(json);
      const RunResult result =
          run("plan --model lenet5 --batch 13 --threads 1 -n " + std::to_string(ranks) + " --layers " + times +
              " --profile " + path("profile.json") + " --steps 2 --json " + json + " --strategies " + selection);
      ASSERT_EQ(result.status, 0) << result.output;
      size_t validated = 0;
      for (const nlohmann::json& record : read_results(json)) {
        EXPECT_EQ(record["kind"], "plan");
        EXPECT_EQ(record["predicted"], false);
        if (!record.contains("measured_phases_sent_bytes_per_rank")) continue;
        ++validated;
        for (const char* phase : {"forward", "backward", "grad_sync", "push", "pull"}) {
          const double predicted = record["phases"].contains(phase)
                                       ? record["phases"][phase]["predicted_sent_bytes_per_rank"].get<double>()
                                       : 0.0;
          EXPECT_EQ(record["measured_phases_sent_bytes_per_rank"][phase].get<double>(), predicted)
              << record["strategy"] << " on " << ranks << " ranks, " << phase;
        }
        EXPECT_EQ(record["measured_sent_bytes_per_rank"].get<double>(),
                  record["predicted_sent_bytes_per_rank"].get<double>())
            << record["strategy"];
        // The predicted memory is what the validation's fullest rank held, but for the batch's images and
        // labels and the messages' buffers.
        const double predicted_memory = record["predicted_memory_bytes_per_rank"].get<double>();
        EXPECT_NEAR(record["measured_memory_bytes_per_rank"].get<double>(), predicted_memory,
                    0.1 * predicted_memory + 0.5e6)
            << record["strategy"] << " on " << ranks << " ranks";
        // Every round ran the strategy; the median run's step time is among them.
        const auto& runs = record["measured_step_time_total_s_runs"];
        ASSERT_EQ(runs.size(), selection.find("--repeat 2") != std::string::npos ? 2u : 1u) << record["strategy"];
        EXPECT_NE(std::find(runs.begin(), runs.end(), record["measured_step_time_s"]["total"]), runs.end());
      }
      EXPECT_EQ(validated, selection.rfind("pipeline", 0) == 0 ? 1u : 5u) << result.output;
    }
  }
}

TEST_F(PlanCli, WhatIfClusterPlansPrintTheSameTwice) {
  const std::string times = layers(32);
  const std::string command =
      "plan --model lenet5 --batch 32 --threads 1 --layers " + times +
      " --cluster nodes=2,ranks-per-node=2,intra-alpha-us=0.5,intra-gbps=10,inter-alpha-us=5,inter-gbps=1.25,compute=2"
      " --json " +
      path("whatif.jsonl");
  const RunResult first = run(command), second = run(command);
  ASSERT_EQ(first.status, 0) << first.output;
  EXPECT_EQ(first.output, second.output);
  EXPECT_NE(first.output.find("what-if cluster (predicted only"), std::string::npos) << first.output;
  const std::vector<nlohmann::json> records = read_results(path("whatif.jsonl"));
  ASSERT_FALSE(records.empty());
  for (const nlohmann::json& record : records) {
    EXPECT_EQ(record["predicted"], true);
    EXPECT_EQ(record["ranks"], 4);
    EXPECT_FALSE(record.contains("measured_step_time_s"));
  }
  EXPECT_EQ(records.front()["rank_in_plan"], 1);
}

TEST_F(PlanCli, BadInputIsOneLineAndExitTwo) {
  const std::string times = layers(8);
  const std::string known = " --threads 1 --profile " + path("profile.json") + " --layers " + times;
  for (const std::string& arguments : std::vector<std::string>{
           "plan --model alexnet -n 2" + known, "plan --model lenet5 --batch 8 -n 2 --strategies diagonal" + known,
           "plan --model lenet5 --batch 8 -n 13 --strategies pipeline" + known,
           "plan --model lenet5 --batch 1 -n 2" + known, "plan --model lenet5 --batch 16 -n 2" + known,
           std::string("plan --model lenet5 --batch 8 -n 2 --layers /nonexistent.json"),
           "plan --model lenet5 --batch 8 -n 2 --threads 1 --layers " + times + " --profile " + times,
           "plan --model lenet5 --batch 8 -n 2 --cluster nodes=2" + known, "plan --model lenet5 --batch 8" + known,
           "plan --model lenet5 --batch 8 -n 2 --repeat 2" + known,
           "plan --model lenet5 --batch 8 -n 2 --validate --repeat 0" + known}) {
    const RunResult result = run(arguments);
    EXPECT_EQ(result.status, 2) << arguments << "\n" << result.output;
    EXPECT_EQ(std::count(result.output.begin(), result.output.end(), '\n'), 1) << arguments << "\n" << result.output;
  }
}

}  // namespace
}  // namespace cclab
