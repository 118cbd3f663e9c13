// Tensor-parallel and hybrid ("one weird trick") training through the binary (local launcher):
// `cclab train --mode tensor` and `--mode hybrid` on 2, 3, 4 and 5 ranks are exact decompositions of
// the one-rank run (same per-step losses, final parameters and evaluation), and the bytes each phase
// sends equal the simulator's prediction and DESIGN 3.7's formulas worked out by hand below.
//
// The model, on 3x16x16 inputs, splits differently by rank count:
//   2 ranks: conv3x3:8 column | relu, pool2 on the slice | conv3x3:8 row (pair) | relu, pool2 |
//            fc:32 column | relu | fc:16 row (pair) | relu | fc:10 column + allgather (5 of 10 each);
//   4 ranks: the same pairs, and fc:10 gathered from pieces of 3, 3, 2, 2 (blocks padded to 3).
// Hybrid keeps the convolutions whole (data-parallel) and splits the fc layers the same way; batch 50
// gives 4 ranks unequal shards (12, 13, 12, 13), so the padded boundary blocks are exercised. The odd
// rank counts (3, 5) split every layer unevenly: see OddRankCounts.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <map>

#include "train_run.h"

namespace cclab {
namespace {


const std::string kRun =
    "train --model conv3x3:8,relu,pool2,conv3x3:8,relu,pool2,fc:32,relu,fc:16,relu,fc:10 "
    "--data synthetic:3x16x16:2000 --steps 20 --batch 50 --threads 1 --seed 3";
constexpr double kBatch = 50, kFloat = 4;
// Elements per sample, worked out by hand: the second convolution's output (8 x 8 x 8), the fc
// boundary (8 x 4 x 4 after the second pool), fc:16 and fc:10 outputs; parameters of the
// convolutions (8 x 3 x 9 + 8 and 8 x 8 x 9 + 8).
constexpr double kConvOut = 512, kBoundary = 128, kFc16 = 16, kFc10 = 10;
constexpr double kConv1Parameters = 224, kConv2Parameters = 584;

// DESIGN 3.7, per rank and step: ring allreduce of P floats, allgather / reduce-scatter of a whole
// array of P floats, over n ranks. (Every count here divides by n: no chunk rounding.)
double allreduce_bytes(double floats, int n) { return 2.0 * (n - 1) / n * floats * kFloat; }
double allgather_bytes(double floats, int n) { return double(n - 1) / n * floats * kFloat; }

// The one-rank run every mode must reproduce, with evaluation off (training runs) or on.
const nlohmann::json& reference(bool evaluate) {
  static std::map<bool, nlohmann::json> records;
  if (!records.count(evaluate))
    records[evaluate] =
        run_training(kRun + " --mode data -n 1" + (evaluate ? "" : " --no-eval"), evaluate ? "ref_eval" : "ref").record;
  return records[evaluate];
}

void expect_same_training(const nlohmann::json& one, const nlohmann::json& many, const std::string& what) {
  ASSERT_FALSE(one.is_null());
  ASSERT_FALSE(many.is_null()) << what;
  const auto reference_losses = one["step_losses"].get<std::vector<double>>();
  const auto losses = many["step_losses"].get<std::vector<double>>();
  ASSERT_EQ(reference_losses.size(), 20u);
  ASSERT_EQ(losses.size(), reference_losses.size()) << what;
  for (size_t step = 0; step < losses.size(); ++step)
    EXPECT_NEAR(losses[step], reference_losses[step], 1e-4 * std::fabs(reference_losses[step]))
        << what << ", step " << step + 1;
  // Final parameters: their sum and the sum of their magnitudes, each parameter counted once.
  const double abs_sum = one["parameter_abs_sum"].get<double>();
  EXPECT_NEAR(many["parameter_abs_sum"].get<double>(), abs_sum, 1e-5 * abs_sum) << what;
  EXPECT_NEAR(many["parameter_sum"].get<double>(), one["parameter_sum"].get<double>(), 1e-5 * abs_sum) << what;
  EXPECT_EQ(many["parameters"], one["parameters"]) << what;
}

// Measured equals predicted in every phase, and the sum of the phases is the record's total.
void expect_measured_equals_predicted(const nlohmann::json& record, const std::string& what) {
  double total = 0;
  for (const char* phase : {"forward", "backward", "grad_sync"}) {
    const nlohmann::json& traffic = record["phases"][phase];
    EXPECT_EQ(traffic["sent_bytes_per_rank"].get<double>(), traffic["predicted_sent_bytes_per_rank"].get<double>())
        << what << ", " << phase;
    // The textbook formula differs from the simulator's count by the chunk rounding only: at most
    // 2(t-1) elements of 4 bytes per collective call, a few calls per layer and step.
    EXPECT_NEAR(traffic["textbook_sent_bytes_per_rank"].get<double>(),
                traffic["predicted_sent_bytes_per_rank"].get<double>(),
                0.01 * traffic["predicted_sent_bytes_per_rank"].get<double>() + 64)
        << what << ", " << phase;
    total += traffic["sent_bytes_per_rank"].get<double>();
  }
  EXPECT_EQ(record["sent_bytes_per_rank"].get<double>(), total) << what;
  // Ring allreduce, allgather and reduce-scatter receive what they send.
  EXPECT_EQ(record["received_bytes_per_rank"].get<double>(), total) << what;
}

double sent(const nlohmann::json& record, const char* phase) {
  return record["phases"][phase]["sent_bytes_per_rank"].get<double>();
}

// Evaluation (sharded like training batches; 333 test samples: a last batch of 33) gives the one-rank
// loss and accuracy, and its traffic is not counted as training's: the bytes equal the --no-eval run's.
void expect_same_evaluation(const std::string& mode, const nlohmann::json& without_evaluation) {
  const nlohmann::json& one = reference(true);
  ASSERT_FALSE(one.is_null());
  ASSERT_FALSE(one["test_loss"].is_null());
  const nlohmann::json evaluated = run_training(kRun + " --mode " + mode, "eval").record;
  ASSERT_FALSE(evaluated.is_null()) << mode;
  EXPECT_NEAR(evaluated["test_loss"].get<double>(), one["test_loss"].get<double>(),
              1e-5 * one["test_loss"].get<double>())
      << mode;
  EXPECT_EQ(evaluated["test_accuracy"], one["test_accuracy"]) << mode;
  expect_measured_equals_predicted(evaluated, mode);
  for (const char* phase : {"forward", "backward", "grad_sync"})
    EXPECT_EQ(sent(evaluated, phase), sent(without_evaluation, phase)) << mode << ", " << phase;
}

class TensorParallel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    for (int ranks : {2, 4})
      runs_[ranks] = run_training(kRun + " --no-eval --mode tensor -n " + std::to_string(ranks), std::to_string(ranks));
  }
  static std::map<int, TrainRun> runs_;
};
std::map<int, TrainRun> TensorParallel::runs_;

TEST_F(TensorParallel, LossesAndParametersEqualSingleProcess) {
  for (int ranks : {2, 4}) {
    const nlohmann::json& record = runs_[ranks].record;
    expect_same_training(reference(false), record, "tensor, " + std::to_string(ranks) + " ranks");
    EXPECT_EQ(record["mode"], "tensor");
    EXPECT_EQ(record["grid"]["tp"], ranks);
  }
}

TEST_F(TensorParallel, SplitHasPairsAndAGatheredColumn) {
  const std::string& two = runs_[2].output;
  EXPECT_NE(two.find("conv3x3:8[out 0:4] column"), std::string::npos) << two;
  EXPECT_NE(two.find("conv3x3:8[in 0:4] row, allreduce"), std::string::npos) << two;
  EXPECT_NE(two.find("fc:16[in 0:16] row, allreduce"), std::string::npos) << two;
  EXPECT_NE(two.find("fc:10[out 0:5] column, allgather"), std::string::npos) << two;
  const std::string& four = runs_[4].output;
  EXPECT_NE(four.find("fc:32[out 0:8] column"), std::string::npos) << four;
  EXPECT_NE(four.find("fc:10[out 0:3] column, allgather"), std::string::npos) << four;
}

TEST_F(TensorParallel, BytesPerPhaseEqualPredictionAndFormula) {
  for (int t : {2, 4}) {
    const nlohmann::json& record = runs_[t].record;
    ASSERT_FALSE(record.is_null());
    const std::string what = "tensor, " + std::to_string(t) + " ranks";
    expect_measured_equals_predicted(record, what);
    // Pairs: forward allreduce of B x (row layer's outputs), backward of B x (column layer's inputs),
    // except for the first convolution, whose input gradient nobody needs. fc:10: an allgather of
    // t blocks of B x (its largest slice), and in backward the allreduce of its B x 16 input gradient.
    const double forward = allreduce_bytes(kBatch * kConvOut, t) + allreduce_bytes(kBatch * kFc16, t) +
                           allgather_bytes(t * kBatch * std::ceil(kFc10 / t), t);
    const double backward = allreduce_bytes(kBatch * kBoundary, t) + allreduce_bytes(kBatch * kFc16, t);
    EXPECT_EQ(sent(record, "forward"), forward) << what;
    EXPECT_EQ(sent(record, "backward"), backward) << what;
    EXPECT_EQ(sent(record, "grad_sync"), 0) << what;
  }
  EXPECT_EQ(sent(runs_[2].record, "forward"), 106600);  // the formula's value, written out once
}

TEST_F(TensorParallel, EvaluationEqualsSingleProcessAndIsNotCounted) {
  expect_same_evaluation("tensor -n 2", runs_[2].record);
}

class HybridParallel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    for (int ranks : {2, 4})
      runs_[ranks] = run_training(kRun + " --no-eval --mode hybrid -n " + std::to_string(ranks), std::to_string(ranks));
  }
  static std::map<int, TrainRun> runs_;
};
std::map<int, TrainRun> HybridParallel::runs_;

TEST_F(HybridParallel, LossesAndParametersEqualSingleProcess) {
  for (int ranks : {2, 4}) {
    const nlohmann::json& record = runs_[ranks].record;
    expect_same_training(reference(false), record, "hybrid, " + std::to_string(ranks) + " ranks");
    EXPECT_EQ(record["mode"], "hybrid");
  }
}

TEST_F(HybridParallel, BytesPerPhaseEqualPredictionAndFormula) {
  for (int n : {2, 4}) {
    const nlohmann::json& record = runs_[n].record;
    ASSERT_FALSE(record.is_null());
    const std::string what = "hybrid, " + std::to_string(n) + " ranks";
    expect_measured_equals_predicted(record, what);
    // The boundary travels in n blocks of the largest shard (13 samples on 4 ranks: 12 and 13).
    const double largest_shard = std::ceil(kBatch / n);
    const double boundary = n * largest_shard * kBoundary, labels = n * largest_shard;
    // fc:32 + fc:16 pair, fc:10 gathered; fc:32's input gradient goes back in the reduce-scatter
    // (f), so the pair's backward allreduce is not there. The reduce-scatter has the allgather's volume.
    const double forward = allgather_bytes(boundary, n) + allgather_bytes(labels, n) +
                           allreduce_bytes(kBatch * kFc16, n) + allgather_bytes(n * kBatch * std::ceil(kFc10 / n), n);
    const double backward = allgather_bytes(boundary, n) + allreduce_bytes(kBatch * kFc16, n);
    const double grad_sync = allreduce_bytes(kConv1Parameters, n) + allreduce_bytes(kConv2Parameters, n);
    EXPECT_EQ(sent(record, "forward"), forward) << what;
    EXPECT_EQ(sent(record, "backward"), backward) << what;
    EXPECT_EQ(sent(record, "grad_sync"), grad_sync) << what;
  }
}

TEST_F(HybridParallel, EvaluationEqualsSingleProcessAndIsNotCounted) {
  expect_same_evaluation("hybrid -n 4", runs_[4].record);
}

// Odd rank counts: slices differ by at most one channel or feature (DESIGN 3.6), so every parameter
// layer with at least t outputs is split. 3 ranks: conv3x3:8 in 3, 3, 2 channels, fc:32 in 11, 11, 10
// features, fc:10 gathered from pieces of 4, 3, 3 (blocks padded to 4); 5 ranks: 2, 2, 2, 1, 1 channels,
// 7, 7, 6, 6, 6 features and fc:10 in 2 each. Batch 47 divides by neither, so hybrid's shards differ too.
const std::string kOddRun =
    "train --model conv3x3:8,relu,pool2,conv3x3:8,relu,pool2,fc:32,relu,fc:16,relu,fc:10 "
    "--data synthetic:3x16x16:2000 --steps 20 --batch 47 --threads 1 --seed 3 --no-eval";
constexpr double kOddBatch = 47;

class OddRankCounts : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    reference_ = run_training(kOddRun + " --mode data -n 1", "odd_1").record;
    for (const char* mode : {"tensor", "hybrid"})
      for (int ranks : {3, 5})
        runs_[name(mode, ranks)] = run_training(kOddRun + " --mode " + mode + " -n " + std::to_string(ranks),
                                                "odd_" + name(mode, ranks));
  }
  static std::string name(const std::string& mode, int ranks) { return mode + "_" + std::to_string(ranks); }
  static nlohmann::json reference_;
  static std::map<std::string, TrainRun> runs_;
};
nlohmann::json OddRankCounts::reference_;
std::map<std::string, TrainRun> OddRankCounts::runs_;

TEST_F(OddRankCounts, LossesAndParametersEqualSingleProcess) {
  for (const auto& [name, run] : runs_) expect_same_training(reference_, run.record, name);
}

TEST_F(OddRankCounts, EveryParameterLayerIsSplit) {
  const std::string& three = runs_["tensor_3"].output;
  for (const char* piece : {"conv3x3:8[out 0:3] column", "conv3x3:8[in 0:3] row, allreduce", "fc:32[out 0:11] column",
                            "fc:16[in 0:11] row, allreduce", "fc:10[out 0:4] column, allgather"})
    EXPECT_NE(three.find(piece), std::string::npos) << piece << "\n" << three;
  const std::string& five = runs_["tensor_5"].output;
  for (const char* piece : {"conv3x3:8[out 0:2] column", "fc:32[out 0:7] column", "fc:10[out 0:2] column, allgather"})
    EXPECT_NE(five.find(piece), std::string::npos) << piece << "\n" << five;
  for (const auto& [name, run] : runs_) EXPECT_EQ(run.output.find("replicated"), std::string::npos) << name;
}

// Measured equals the simulator's prediction exactly; DESIGN 3.7's formulas hold up to the ring's
// chunk rounding: a ring allreduce of P floats over n ranks sends 2(n-1) chunks of at most ceil(P/n).
TEST_F(OddRankCounts, BytesEqualPredictionAndFormulaUpToChunkRounding) {
  for (int n : {3, 5}) {
    const double gathered_piece = std::ceil(kFc10 / n);  // fc:10's slices, padded to the largest
    const double rounding = 2.0 * (n - 1) * kFloat;      // per allreduce
    {
      const nlohmann::json& record = runs_[name("tensor", n)].record;
      const std::string what = "tensor, " + std::to_string(n) + " ranks";
      expect_measured_equals_predicted(record, what);
      const double forward = allreduce_bytes(kOddBatch * kConvOut, n) + allreduce_bytes(kOddBatch * kFc16, n) +
                             allgather_bytes(n * kOddBatch * gathered_piece, n);
      const double backward = allreduce_bytes(kOddBatch * kBoundary, n) + allreduce_bytes(kOddBatch * kFc16, n);
      EXPECT_NEAR(sent(record, "forward"), forward, 2 * rounding) << what;
      EXPECT_NEAR(sent(record, "backward"), backward, 2 * rounding) << what;
      EXPECT_EQ(sent(record, "grad_sync"), 0) << what;
    }
    {
      const nlohmann::json& record = runs_[name("hybrid", n)].record;
      const std::string what = "hybrid, " + std::to_string(n) + " ranks";
      expect_measured_equals_predicted(record, what);
      const double largest_shard = std::ceil(kOddBatch / n);
      const double boundary = n * largest_shard * kBoundary, labels = n * largest_shard;
      const double forward = allgather_bytes(boundary, n) + allgather_bytes(labels, n) +
                             allreduce_bytes(kOddBatch * kFc16, n) + allgather_bytes(n * kOddBatch * gathered_piece, n);
      const double backward = allgather_bytes(boundary, n) + allreduce_bytes(kOddBatch * kFc16, n);
      const double grad_sync = allreduce_bytes(kConv1Parameters, n) + allreduce_bytes(kConv2Parameters, n);
      EXPECT_NEAR(sent(record, "forward"), forward, rounding) << what;
      EXPECT_NEAR(sent(record, "backward"), backward, rounding) << what;
      EXPECT_NEAR(sent(record, "grad_sync"), grad_sync, 2 * rounding) << what;
    }
  }
}

// Krizhevsky's point: with most parameters in the fc layers, hybrid moves activations instead of
// those parameters' gradients, far fewer bytes than data mode.
TEST_F(HybridParallel, ConvnetSendsFarLessThanDataMode) {
  const std::string run =
      "train --model convnet --data synthetic:1x28x28:256 --steps 2 --batch 16 --threads 1 "
      "--no-eval -n 2 --mode ";
  const nlohmann::json data = run_training(run + "data", "convnet_data").record;
  const nlohmann::json hybrid = run_training(run + "hybrid", "convnet_hybrid").record;
  ASSERT_FALSE(data.is_null());
  ASSERT_FALSE(hybrid.is_null());
  expect_measured_equals_predicted(hybrid, "convnet hybrid");
  EXPECT_LT(hybrid["sent_bytes_per_rank"].get<double>(), data["sent_bytes_per_rank"].get<double>() / 10);
}

}  // namespace
}  // namespace cclab
