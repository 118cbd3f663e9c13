// Slow (ctest label "slow"): LeNet-5, one epoch of Fashion-MNIST through the cclab binary, must
// reach 83% test accuracy. Prints the epoch time and throughput (recorded, not asserted).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "results.h"

namespace cclab {
namespace {

TEST(TrainAccuracy, Lenet5ReachesEightyThreePercentInOneEpoch) {
  if (!std::filesystem::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  const std::string json =
      (std::filesystem::temp_directory_path() / ("cclab_train_accuracy_" + std::to_string(getpid()) + ".jsonl"))
          .string();
  std::filesystem::remove(json);
  const std::string command =
      std::string(CCLAB_BINARY) + " train --model lenet5 --epochs 1 --batch 64 --seed 1 --json " + json + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  std::array<char, 4096> chunk;
  while (size_t got = fread(chunk.data(), 1, chunk.size(), pipe)) output.append(chunk.data(), got);
  const int status = pclose(pipe);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output;
  std::cout << output;
  const auto records = read_results(json);
  ASSERT_EQ(records.size(), 2u);
  const nlohmann::json& train = records.back();
  EXPECT_EQ(train["kind"], "train");
  EXPECT_GE(train["test_accuracy"].get<double>(), 0.83) << output;
  std::cout << "lenet5, 1 epoch: test accuracy " << train["test_accuracy"] << ", " << train["train_time_s"]
            << " s, " << train["images_per_s"] << " images/s\n";
  std::filesystem::remove(json);
}

}  // namespace
}  // namespace cclab
