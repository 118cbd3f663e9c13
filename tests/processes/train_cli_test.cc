// `cclab train` as a user runs it: exit statuses and messages for what this build does not do yet or
// cannot do, and the records of a short synthetic run.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "results.h"
#include "run_command.h"
#include "trace_check.h"

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
  expect_usage_error("train --batch 0 --data synthetic:1x8x8", "--batch: '0' is not a whole number from 1");
  expect_usage_error("train --model conv3x3:2,fc:4 --data fashion-mnist", "fashion-mnist has 10 classes");
}

// Counts that would wrap or never end, and paths that would fail only after training, are refused
// before any work: one line, exit 2, at once.
TEST(TrainCli, FlagsOutOfRangeAndBadPathsAreRefusedBeforeTraining) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("cclab_train_cli_paths_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "checkpoints" / "checkpoint.bin");
  std::ofstream(dir / "a_file") << "x";
  const std::string synthetic = " --data synthetic:1x8x8:64 --model fc:10 ";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--steps -1", "--steps: '-1' is not a whole number"},
      {"--steps 18446744073709551615", "--steps: '18446744073709551615' is not a whole number"},
      {"--epochs -1", "--epochs: '-1' is not a whole number"},
      {"--lr nan", "--lr: 'nan' is not a number"},
      {"--momentum -1", "--momentum: '-1' is not a number"},
      {"--mode pipeline -n 2 --balance 1,-1", "--balance: '-1' is not a whole number"},
      {"--timeout inf", "--timeout: 'inf' is not a number"},
      {"-n 1000", "-n 1000 would start 1000 processes on this host"},
      {"--scaling 1,500", "--scaling 500 would start 500 processes"},
      {"--json " + dir.string(), "is a directory, not a file"},
      {"--checkpoint-dir " + (dir / "a_file").string(), "is not a directory"},
      {"--checkpoint-dir " + (dir / "checkpoints").string(), "checkpoint.bin is a directory"},
  };
  for (const auto& [arguments, fragment] : cases) {
    const auto start = std::chrono::steady_clock::now();
    expect_usage_error("train" + synthetic + arguments, fragment);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2)) << arguments;
  }
  std::filesystem::remove_all(dir);
}

// Fashion-MNIST files whose images are not 28x28 (the model's input) are refused from their header.
TEST(TrainCli, ImagesOfAnotherShapeAreRefused) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("cclab_train_cli_idx_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  // Uncompressed IDX (gzread reads plain files too): 3 images of 14 x 14, 3 labels.
  auto write_idx = [&](const std::string& name, std::vector<uint8_t> header, size_t data_bytes) {
    header.resize(header.size() + data_bytes, 1);
    std::ofstream(dir / name, std::ios::binary).write(reinterpret_cast<const char*>(header.data()), header.size());
  };
  for (const std::string split : {"train", "t10k"}) {
    write_idx(split + "-images-idx3-ubyte.gz", {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 14, 0, 0, 0, 14}, 3 * 14 * 14);
    write_idx(split + "-labels-idx1-ubyte.gz", {0, 0, 8, 1, 0, 0, 0, 3}, 3);
  }
  expect_usage_error("train --model lenet5 --steps 3 --data-dir " + dir.string(),
                     "holds 3x14x14 elements; expected N x 28x28");
  std::filesystem::remove_all(dir);
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
  // Every timed step's time (the first is the warm-up), for compare's test.
  EXPECT_EQ(records[2]["samples_us"].size(), 23u);
  EXPECT_EQ(records[2]["threads"], 1);
  EXPECT_EQ(records[2]["backend"]["name"], "onednn");
  EXPECT_TRUE(records[2]["test_accuracy"].is_number());
  std::filesystem::remove(json);
}

// --device cuda where no GPU, driver, cuDNN or cuBLAS is usable ends before any rank trains, with
// one line naming what is missing; where one is, the run says which GPU and libraries it used.
TEST(TrainCli, GpuTrainingRunsOnAGpuOrIsRefusedWithTheReason) {
  expect_usage_error("train --device tpu --steps 1", "unknown --device 'tpu' (cpu, cuda)");
  const std::string json =
      (std::filesystem::temp_directory_path() / ("cclab_train_gpu_" + std::to_string(getpid()) + ".jsonl")).string();
  std::filesystem::remove(json);
  const std::string small = " --model conv3x3:4,relu,pool2,fc:6 --data synthetic:3x8x8:200 --steps 3 --batch 20";
  const RunResult one = run("train --device cuda" + small + " --json " + json);
  if (one.status == 2) {
    EXPECT_NE(one.output.find("cclab: error: --device cuda: "), std::string::npos) << one.output;
    EXPECT_EQ(std::count(one.output.begin(), one.output.end(), '\n'), 1) << one.output;
    expect_usage_error("train --device cuda -n 2" + small, "--device cuda: ");
    EXPECT_FALSE(std::filesystem::exists(json));
    return;
  }
  ASSERT_EQ(one.status, 0) << one.output;
  const auto records = read_results(json);
  ASSERT_FALSE(records.empty());
  EXPECT_EQ(records.back()["backend"]["name"], "cudnn");
  EXPECT_TRUE(records.back()["backend"]["gpu"].is_string());
  std::filesystem::remove(json);
}

// --trace: every rank's steps with their compute, communication and idle time; a pipeline's waits
// for its neighbour show as bubbles.
TEST(TrainCli, TraceShowsEachRanksComputeCommunicationAndIdleTime) {
  const std::string trace =
      (std::filesystem::temp_directory_path() / ("cclab_train_trace_" + std::to_string(getpid()) + ".json")).string();
  const std::string training = "train --model conv3x3:4,relu,pool2,fc:6 --data synthetic:3x8x8:600 --steps 3 "
                               "--batch 32 --threads 1 --no-eval -n 2 --trace " + trace;
  struct Expected {
    std::string mode;
    std::vector<std::pair<std::string, std::string>> spans;  // (category, name)
  };
  for (const Expected& expected :
       {Expected{"pipeline", {{"compute", "forward"}, {"compute", "backward"}, {"compute", "update"}, {"idle", "bubble"},
                              {"comm", "post send"}, {"step", "step"}}},
        Expected{"data", {{"compute", "forward"}, {"compute", "backward"}, {"compute", "update"},
                          {"comm", "gradient buckets"}, {"step", "step"}}},
        Expected{"tensor", {{"compute", "forward"}, {"comm", "allreduce"}, {"step", "step"}}}}) {
    std::filesystem::remove(trace);
    const RunResult result = run(training + " --mode " + expected.mode);
    ASSERT_EQ(result.status, 0) << expected.mode << "\n" << result.output;
    const TraceFile file = read_trace(trace);
    ASSERT_EQ(file.problem, "") << expected.mode;
    EXPECT_EQ(file.ranks, (std::set<int>{0, 1})) << expected.mode;
    for (const auto& kind : expected.spans)
      EXPECT_TRUE(file.kinds.count(kind)) << expected.mode << ": no " << kind.first << " " << kind.second;
    for (int rank = 0; rank < 2; ++rank)
      EXPECT_EQ(std::count_if(file.spans.begin(), file.spans.end(),
                              [&](const nlohmann::json& span) { return span["pid"] == rank && span["name"] == "step"; }),
                3)
          << expected.mode << " rank " << rank;
  }
  std::filesystem::remove(trace);
  expect_usage_error("train --steps 1 --trace /dev/null/trace.json", "--trace");
  expect_usage_error("train --scaling 1,2 --steps 1 --trace " + trace, "--scaling");
}

}  // namespace
}  // namespace cclab
