// `cclab train --mode data -n N` through the binary (local launcher): data-parallel training is an
// exact decomposition of single-process training (same per-step losses and final parameters), with
// the gradients moving through node-shared memory (one node) or through the transport (virtual
// nodes of one rank), the measured gradient traffic equals the prediction and the ring formula on
// both paths, and --scaling runs.
// The slow-labelled test trains LeNet-5 for one epoch of Fashion-MNIST on 2 ranks.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>

#include "train_run.h"

namespace cclab {
namespace {

// The train record of one run (and the process output on failure).
nlohmann::json train_record(const std::string& arguments, const std::string& tag) {
  return run_training(arguments, "dp_" + tag).record;
}

// A small CNN with five parameter layers; 0.01 MiB buckets give two buckets per step, of 4826 and
// 808 parameters. Batch 47 divides by none of the rank counts (shards of 24/23, 16/15, 12/11 and
// 10/9). The SGD step is sharded over the ranks in blocks of floor(count / N) elements per bucket
// (sharded_gradient_buckets.h): on 3 ranks both buckets have a tail (4826 % 3 = 2, 808 % 3 = 1) summed
// by an allreduce, on 4 ranks the first one (4826 % 4 = 2), on 5 both (4826 % 5 = 1, 808 % 5 = 3).
const std::string kRun =
    "train --model conv3x3:8,relu,pool2,conv3x3:8,relu,pool2,fc:32,relu,fc:16,relu,fc:10 "
    "--data synthetic:3x16x16:2000 --steps 20 --batch 47 --threads 1 --no-eval --bucket-mb 0.01 --seed 3";

// The runs of several ranks: on one node the ranks exchange gradients and parameters through
// node-shared memory; as virtual nodes of one rank each (--ranks-per-node 1) through the transport.
struct Ranks {
  int ranks;
  bool shared_memory;
  std::string arguments() const {
    return " -n " + std::to_string(ranks) + (shared_memory ? "" : " --ranks-per-node 1");
  }
  std::string name() const { return std::to_string(ranks) + (shared_memory ? " ranks" : " ranks (transport)"); }
};
const Ranks kSeveralRanks[] = {{2, true}, {3, true}, {4, true}, {5, true}, {2, false}, {3, false}};

class DataParallel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    one_ = train_record(kRun + " -n 1", "1");
    for (const Ranks& run : kSeveralRanks) {
      TrainRun result = run_training(kRun + run.arguments(),
                                     "dp_" + std::to_string(run.ranks) + "_" + std::to_string(run.shared_memory));
      outputs_[run.name()] = result.output;
      records_[run.name()] = result.record;
    }
  }
  static nlohmann::json one_;
  static std::map<std::string, nlohmann::json> records_;
  static std::map<std::string, std::string> outputs_;
};
nlohmann::json DataParallel::one_;
std::map<std::string, nlohmann::json> DataParallel::records_;
std::map<std::string, std::string> DataParallel::outputs_;

TEST_F(DataParallel, LossesAndParametersEqualSingleProcess) {
  const nlohmann::json& one = one_;
  ASSERT_FALSE(one.is_null());
  const auto reference = one["step_losses"].get<std::vector<double>>();
  ASSERT_EQ(reference.size(), 20u);
  for (const Ranks& run : kSeveralRanks) {
    const int ranks = run.ranks;
    const nlohmann::json& many = records_[run.name()];
    ASSERT_FALSE(many.is_null()) << run.name();
    EXPECT_EQ(many["mode"], "data");
    EXPECT_EQ(many["ranks"], ranks);
    EXPECT_EQ(many["grid"]["dp"], ranks);
    EXPECT_EQ(many["global_batch"], 47);
    const auto losses = many["step_losses"].get<std::vector<double>>();
    ASSERT_EQ(losses.size(), reference.size());
    for (size_t step = 0; step < losses.size(); ++step)
      EXPECT_NEAR(losses[step], reference[step], 1e-4 * std::fabs(reference[step]))
          << run.name() << ", step " << step + 1;
    EXPECT_NEAR(many["final_loss"].get<double>(), one["final_loss"].get<double>(),
                1e-4 * std::fabs(one["final_loss"].get<double>()));
    // Final parameters: their sum and the sum of their magnitudes.
    const double abs_sum = one["parameter_abs_sum"].get<double>();
    EXPECT_NEAR(many["parameter_abs_sum"].get<double>(), abs_sum, 1e-5 * abs_sum) << run.name();
    EXPECT_NEAR(many["parameter_sum"].get<double>(), one["parameter_sum"].get<double>(), 1e-5 * abs_sum) << run.name();
  }
}

TEST_F(DataParallel, TheHeaderSaysHowTheGradientsMove) {
  for (const Ranks& run : kSeveralRanks) {
    const std::string& output = outputs_[run.name()];
    EXPECT_NE(output.find(run.shared_memory ? "through node-shared memory" : "through the transport"),
              std::string::npos)
        << run.name() << "\n"
        << output;
  }
}

TEST_F(DataParallel, GradSyncBytesEqualPredictionAndRingFormula) {
  for (const Ranks& run : kSeveralRanks) {
    const int ranks = run.ranks;
    const nlohmann::json& record = records_[run.name()];
    ASSERT_FALSE(record.is_null()) << run.name();
    const double parameters = record["parameters"].get<double>();
    const auto& phases = record["phases"];
    const double sent = phases["grad_sync"]["sent_bytes_per_rank"].get<double>();
    const double predicted = phases["grad_sync"]["predicted_sent_bytes_per_rank"].get<double>();
    EXPECT_GT(record["buckets"].get<int>(), 1);
    EXPECT_EQ(sent, predicted) << run.name();
    EXPECT_EQ(record["grad_sync_path"], run.shared_memory ? "node_shared_memory" : "transport") << run.name();
    EXPECT_EQ(record["received_bytes_per_rank"].get<double>(), sent);
    // Reduce-scatter + allgather of each bucket's N * floor(count / N) elements, plus its tail
    // (< N elements: a ring allreduce, or read by every peer in shared memory): together the ring
    // allreduce's 2 (N-1)/N of the buffer per rank, up to the rounding of the blocks and the tail's
    // to whole elements.
    const double formula = 2.0 * (ranks - 1) / ranks * parameters * 4;
    EXPECT_NEAR(sent, formula, record["buckets"].get<double>() * 2 * (ranks - 1) * 4) << run.name();
    // The record carries the formula itself beside the prediction.
    EXPECT_NEAR(phases["grad_sync"]["textbook_sent_bytes_per_rank"].get<double>(), formula, 1e-9 * formula)
        << run.name();
    EXPECT_EQ(phases["forward"]["sent_bytes_per_rank"].get<double>(), 0);
    EXPECT_EQ(phases["backward"]["sent_bytes_per_rank"].get<double>(), 0);
    EXPECT_EQ(record["sent_bytes_per_rank"].get<double>(), sent);
    const auto& time = record["step_time_s"];
    EXPECT_NEAR(time["compute"].get<double>() + time["comm"].get<double>() + time["idle"].get<double>(),
                time["total"].get<double>(), 1e-9 + 1e-6 * time["total"].get<double>());
  }
  EXPECT_EQ(one_["phases"]["grad_sync"]["sent_bytes_per_rank"].get<double>(), 0);
}

// The reduce-scatter sends a block in messages of at most 2^18 floats (ShardedGradientBuckets::
// kSegmentElements), each summed into the update as it arrives. fc:8192 after the convolutions'
// 8x4x4 features is a bucket of 128 * 8192 + 8192 = 1056768 parameters: blocks of 528384 (2 full
// segments and a partial one) on 2 ranks and 352256 (a full one and a partial one) on 3.
TEST(DataParallelSegments, BlocksOfSeveralMessagesEqualSingleProcess) {
  const std::string run =
      "train --model conv3x3:8,relu,pool2,conv3x3:8,relu,pool2,fc:8192,relu,fc:10 "
      "--data synthetic:3x16x16:2000 --steps 4 --batch 48 --threads 1 --no-eval --bucket-mb 1 --seed 5";
  const nlohmann::json one = train_record(run + " -n 1", "segments_1");
  ASSERT_FALSE(one.is_null());
  const auto reference = one["step_losses"].get<std::vector<double>>();
  const double abs_sum = one["parameter_abs_sum"].get<double>();
  for (const Ranks& several : {Ranks{2, true}, Ranks{3, true}, Ranks{2, false}}) {
    const int ranks = several.ranks;
    const nlohmann::json many = train_record(
        run + several.arguments(), "segments_" + std::to_string(ranks) + std::to_string(several.shared_memory));
    ASSERT_FALSE(many.is_null());
    const auto losses = many["step_losses"].get<std::vector<double>>();
    ASSERT_EQ(losses.size(), reference.size());
    for (size_t step = 0; step < losses.size(); ++step)
      EXPECT_NEAR(losses[step], reference[step], 1e-4 * std::fabs(reference[step]))
          << ranks << " ranks, step " << step + 1;
    EXPECT_NEAR(many["parameter_abs_sum"].get<double>(), abs_sum, 1e-5 * abs_sum) << ranks << " ranks";
    EXPECT_NEAR(many["parameter_sum"].get<double>(), one["parameter_sum"].get<double>(), 1e-5 * abs_sum)
        << ranks << " ranks";
    const auto& grad_sync = many["phases"]["grad_sync"];
    EXPECT_EQ(grad_sync["sent_bytes_per_rank"].get<double>(), grad_sync["predicted_sent_bytes_per_rank"].get<double>())
        << ranks << " ranks";
  }
}

// --repeat 2: each rank count runs twice, in turn; a row's speedup is the median (here the mean) of
// its rounds' speedups, each over the same round's one-rank run.
TEST(DataParallelCli, ScalingPrintsASpeedupTableOfInterleavedRounds) {
  const std::string json =
      (std::filesystem::temp_directory_path() / ("cclab_scaling_" + std::to_string(getpid()) + ".jsonl")).string();
  std::filesystem::remove(json);
  const RunResult result =
      run("train --model conv3x3:4,relu,pool2,fc:10 --data synthetic:1x8x8:400 --steps 5 "
          "--batch 32 --threads 1 --no-eval --scaling 1,2 --repeat 2 --json " + json);
  ASSERT_EQ(result.status, 0) << result.output;
  EXPECT_NE(result.output.find("speedup"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("predicted_B"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("data mode, 2 ranks, round 2 of 2"), std::string::npos) << result.output;
  std::vector<nlohmann::json> records;
  for (const nlohmann::json& record : read_results(json))
    if (record["kind"] == "train") records.push_back(record);
  std::filesystem::remove(json);
  ASSERT_EQ(records.size(), 2u) << result.output;
  const auto one = records[0]["images_per_s_runs"].get<std::vector<double>>();
  const auto two = records[1]["images_per_s_runs"].get<std::vector<double>>();
  ASSERT_EQ(one.size(), 2u);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(records[0]["speedup"].get<double>(), 1.0);
  EXPECT_NEAR(records[1]["speedup"].get<double>(), (two[0] / one[0] + two[1] / one[1]) / 2, 1e-12);
  const double rate = records[1]["images_per_s"].get<double>();
  EXPECT_TRUE(rate == two[0] || rate == two[1]) << "the row is one of its runs";
}

TEST(DataParallelCli, BadInputIsAUsageError) {
  for (const auto& [arguments, fragment] : std::vector<std::pair<std::string, std::string>>{
           {"train --mode data,tensor -n 2", "several --mode values need --scaling"},
           {"train --scaling 1,2 -n 2", "give --scaling or -n, not both"},
           {"train --scaling 1,x", "--scaling takes rank counts"},
           {"train --repeat 3 -n 2", "--repeat repeats --scaling's runs"},
           {"train --scaling 1,2 --repeat 0", "--repeat"},
           {"train --bucket-mb 0", "--bucket-mb must be in"},
           {"train --data synthetic:1x8x8:100 --batch 2 -n 4 --no-eval --steps 1",
            "smaller than the 4 data-parallel ranks"},
       }) {
    const RunResult result = run(arguments);
    EXPECT_EQ(result.status, 2) << arguments << "\n" << result.output;
    EXPECT_NE(result.output.find(fragment), std::string::npos) << arguments << "\n" << result.output;
  }
}

// Slow (label "slow"): LeNet-5, one epoch of Fashion-MNIST on 2 data-parallel ranks.
TEST(DataParallelAccuracy, Lenet5OnTwoRanksReachesEightyThreePercent) {
  if (!std::filesystem::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  const nlohmann::json record = train_record("train --model lenet5 --epochs 1 --batch 64 --seed 1 -n 2", "acc");
  ASSERT_FALSE(record.is_null());
  EXPECT_GE(record["test_accuracy"].get<double>(), 0.83);
  std::cout << "lenet5, 1 epoch, 2 ranks: test accuracy " << record["test_accuracy"] << ", " << record["images_per_s"]
            << " images/s\n";
}

}  // namespace
}  // namespace cclab
