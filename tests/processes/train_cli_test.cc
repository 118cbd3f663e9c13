// `cclab train` as a user runs it: exit statuses and messages for what this build does not do yet or
// cannot do, and the records of a short synthetic run.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>

#include "results.h"
#include "run_command.h"

namespace cclab {
namespace {

RunResult run(const std::string& arguments) {
  return run_command(std::string(CCLAB_BINARY) + " " + arguments);
}


void expect_usage_error(const std::string& arguments, const std::string& fragment) {
  const RunResult result = run(arguments);
  EXPECT_EQ(result.status, 2) << arguments << "\n" << result.output;
  EXPECT_NE(result.output.find(fragment), std::string::npos)
      << arguments << "\n" << result.output << "(expected '" << fragment << "')";
}

TEST(TrainCli, BadModesAndGridsAreUsageErrors) {
  expect_usage_error("train --mode diagonal", "unknown --mode 'diagonal'");
  expect_usage_error("train --mode pipeline --schedule zigzag", "unknown --schedule 'zigzag'");
  expect_usage_error("train --mode hybrid -n 4 --grid dp=2,pp=3", "--grid dp=2,pp=3 has 6 ranks, the job 4");
  expect_usage_error("train --mode hybrid -n 4 --grid dp=2,qq=2", "--grid takes dimensions such as dp=2,pp=2");
  expect_usage_error("train --mode data -n 4 --grid dp=2,pp=2", "--mode data does not run on the grid dp=2,tp=1,pp=2");
  expect_usage_error("train --mode pipeline -n 4 --stages 3", "--stages 3 does not divide the 4 ranks");
  expect_usage_error("train --mode data -n 2 --stages 2", "--stages is for --mode pipeline");
  expect_usage_error("train --mode tensor --scaling 1,2,3 --grid tp=2", "--grid tp=2 has 2 ranks, the job 3");
}

TEST(TrainCli, BadInputIsAUsageError) {
  expect_usage_error("train --model conv5:3", "bad model spec item 1 'conv5:3'");
  expect_usage_error("train --model alexnet", "unknown model 'alexnet'");
  expect_usage_error("train --data-dir /nonexistent/fmnist",
                     "'/nonexistent/fmnist/train-images-idx3-ubyte.gz' does not exist");
  expect_usage_error("train --data imagenet", "--data takes fashion-mnist or synthetic:CxHxW");
  expect_usage_error("train --epochs 2 --steps 3", "give --epochs or --steps, not both");
  expect_usage_error("train --batch 0 --data synthetic:1x8x8", "--batch must be at least 1");
  expect_usage_error("train --model conv3x3:2,fc:4 --data fashion-mnist", "fashion-mnist has 10 classes");
}

TEST(TrainCli, SyntheticRunWritesEpochAndTrainRecords) {
  const std::string json =
      (std::filesystem::temp_directory_path() / ("cclab_train_cli_" + std::to_string(getpid()) + ".jsonl")).string();
  std::filesystem::remove(json);
  const RunResult result = run("train --model conv3x3:4,relu,pool2,fc:6 --data synthetic:3x8x8:600 --epochs 2 "
                               "--batch 50 --threads 1 --json " + json);
  ASSERT_EQ(result.status, 0) << result.output;
  EXPECT_NE(result.output.find("images/s"), std::string::npos) << result.output;
  const auto records = read_results(json);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0]["kind"], "epoch");
  EXPECT_EQ(records[1]["kind"], "epoch");
  EXPECT_EQ(records[2]["kind"], "train");
  EXPECT_EQ(records[2]["model"], "custom");
  EXPECT_EQ(records[2]["steps"], 24);
  EXPECT_EQ(records[2]["threads"], 1);
  EXPECT_TRUE(records[2]["test_accuracy"].is_number());
  std::filesystem::remove(json);
}

}  // namespace
}  // namespace cclab
