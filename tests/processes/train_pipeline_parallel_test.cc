// Pipeline-parallel training. Through the binary (local launcher): `cclab train --mode pipeline` on
// 2, 3, 4 and 5 stages with GPipe and 1F1B, and the data x pipeline grid `--mode hybrid --grid
// dp=2,pp=2`, are exact decompositions of the one-rank run (same per-step losses, final parameters, evaluation),
// and the bytes each phase sends equal the prediction and DESIGN 3.7's formulas: B x a x 4 per
// boundary and direction, the ring allreduce of a stage's parameters over its replicas. In-process:
// the schedules (every micro-batch once each way, the activations each keeps alive, no deadlock
// between neighbouring stages) and the stage balancing (optimal against brute force).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <random>
#include <regex>
#include <sstream>

#include "cclab/error.h"
#include "modes/pipeline_schedule.h"
#include "modes/stage_balance.h"
#include "train_run.h"

namespace cclab {
namespace {

using train::PipelineAction;


// Eleven layers, five with parameters. Batch 50 in 4 micro-batches (12 or 13 samples); with two
// replicas each gets 25 (micro-batches of 6 or 7).
const std::string kModel = "conv3x3:8,relu,pool2,conv3x3:8,relu,pool2,fc:32,relu,fc:16,relu,fc:10";
const std::string kRun = "train --model " + kModel +
                         " --data synthetic:3x16x16:2000 --steps 20 --batch 50 --threads 1 --seed 3 --microbatches 4";
constexpr double kBatch = 50;
// The model's shapes worked out by hand on 3x16x16: the elements per sample each layer outputs, and
// each layer's parameters (weights + bias).
const std::vector<double> kLayerOutputs = {8 * 16 * 16, 8 * 16 * 16, 8 * 8 * 8, 8 * 8 * 8, 8 * 8 * 8, 8 * 4 * 4,
                                           32,          32,          16,        16,        10};
const std::vector<double> kLayerParameters = {3 * 9 * 8 + 8, 0, 0,           8 * 9 * 8 + 8, 0, 0, 128 * 32 + 32, 0,
                                              32 * 16 + 16,  0, 10 * 16 + 10};

// Run name -> arguments. All train 20 steps without evaluation, except the *_eval runs.
const std::map<std::string, std::string> kRuns = {
    {"reference", "-n 1 --no-eval"},
    {"gpipe_2", "--mode pipeline -n 2 --schedule gpipe --no-eval"},
    {"1f1b_2", "--mode pipeline -n 2 --schedule 1f1b --no-eval"},
    {"gpipe_4", "--mode pipeline -n 4 --schedule gpipe --no-eval"},
    {"1f1b_4", "--mode pipeline -n 4 --schedule 1f1b --no-eval"},
    {"gpipe_3", "--mode pipeline -n 3 --schedule gpipe --no-eval"},
    {"1f1b_5", "--mode pipeline -n 5 --schedule 1f1b --no-eval"},
    {"grid_2x2", "--mode hybrid --grid dp=2,pp=2 -n 4 --no-eval"},
    {"reference_eval", "-n 1"},
    {"grid_2x2_eval", "--mode hybrid --grid dp=2,pp=2 -n 4 --schedule gpipe"},
};

struct Expected {
  int stages, replicas;
  std::string schedule;
};
const std::map<std::string, Expected> kPipelineRuns = {{"gpipe_2", {2, 1, "gpipe"}},
                                                       {"1f1b_2", {2, 1, "1f1b"}},
                                                       {"gpipe_4", {4, 1, "gpipe"}},
                                                       {"1f1b_4", {4, 1, "1f1b"}},
                                                       {"gpipe_3", {3, 1, "gpipe"}},
                                                       {"1f1b_5", {5, 1, "1f1b"}},
                                                       {"grid_2x2", {2, 2, "1f1b"}}};

class PipelineParallel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    for (const auto& [name, arguments] : kRuns) runs_[name] = run_training(kRun + " " + arguments, name);
  }
  static std::map<std::string, TrainRun> runs_;
};
std::map<std::string, TrainRun> PipelineParallel::runs_;

// The first layer of every stage, from the "# pipeline: ..." header line.
std::vector<size_t> stage_starts(const std::string& output) {
  std::vector<size_t> starts;
  const std::regex stage("stage (\\d+): layers (\\d+)");
  for (auto it = std::sregex_iterator(output.begin(), output.end(), stage); it != std::sregex_iterator(); ++it) {
    EXPECT_EQ(std::stoul((*it)[1]), starts.size());
    starts.push_back(std::stoul((*it)[2]));
  }
  return starts;
}

void expect_same_training(const nlohmann::json& run, const nlohmann::json& reference, const std::string& name) {
  const auto expected = reference["step_losses"].get<std::vector<double>>();
  const auto losses = run["step_losses"].get<std::vector<double>>();
  ASSERT_EQ(expected.size(), 20u);
  ASSERT_EQ(losses.size(), expected.size()) << name;
  for (size_t step = 0; step < losses.size(); ++step)
    EXPECT_NEAR(losses[step], expected[step], 1e-4 * std::fabs(expected[step])) << name << ", step " << step + 1;
  const double abs_sum = reference["parameter_abs_sum"].get<double>();
  EXPECT_NEAR(run["parameter_abs_sum"].get<double>(), abs_sum, 1e-5 * abs_sum) << name;
  EXPECT_NEAR(run["parameter_sum"].get<double>(), reference["parameter_sum"].get<double>(), 1e-5 * abs_sum) << name;
}

TEST_F(PipelineParallel, LossesAndParametersEqualSingleProcess) {
  const nlohmann::json& reference = runs_["reference"].record;
  ASSERT_FALSE(reference.is_null());
  for (const auto& [name, expected] : kPipelineRuns) {
    const nlohmann::json& record = runs_[name].record;
    ASSERT_FALSE(record.is_null()) << name;
    EXPECT_EQ(record["ranks"], expected.stages * expected.replicas) << name;
    EXPECT_EQ(record["grid"]["pp"], expected.stages) << name;
    EXPECT_EQ(record["grid"]["dp"], expected.replicas) << name;
    expect_same_training(record, reference, name);
    EXPECT_NE(
        runs_[name].output.find(std::to_string(expected.stages) + " stages x " + std::to_string(expected.replicas) +
                                (expected.replicas == 1 ? " replica" : " replicas") + ", 4 micro-batches"),
        std::string::npos)
        << runs_[name].output;
    EXPECT_NE(runs_[name].output.find(expected.schedule), std::string::npos) << runs_[name].output;
  }
}

TEST_F(PipelineParallel, EvaluationThroughTheStagesEqualsSingleProcess) {
  const nlohmann::json& reference = runs_["reference_eval"].record;
  const nlohmann::json& grid = runs_["grid_2x2_eval"].record;
  ASSERT_FALSE(reference.is_null());
  ASSERT_FALSE(grid.is_null());
  expect_same_training(grid, reference, "grid_2x2_eval");
  ASSERT_TRUE(reference["test_accuracy"].is_number());
  EXPECT_NEAR(grid["test_accuracy"].get<double>(), reference["test_accuracy"].get<double>(), 1e-9);
}

// DESIGN 3.7: B x a x 4 bytes per boundary and direction per step (a: the boundary's elements per
// sample, B: the replica's batch), the busiest rank is the one at the widest boundary; a stage's
// replicas allreduce its P parameters in rings (one per layer): 2 (N-1)/N x P x 4, the busiest stage
// the largest.
TEST_F(PipelineParallel, BytesPerPhaseEqualPredictionAndFormulas) {
  for (const auto& [name, expected] : kPipelineRuns) {
    const TrainRun& run = runs_[name];
    ASSERT_FALSE(run.record.is_null()) << name;
    const std::vector<size_t> starts = stage_starts(run.output);
    ASSERT_EQ(starts.size(), size_t(expected.stages)) << run.output;
    double widest_boundary = 0, largest_stage = 0, most_parameter_layers = 0;
    for (int s = 0; s < expected.stages; ++s) {
      const size_t end = s + 1 < expected.stages ? starts[size_t(s + 1)] : kLayerOutputs.size();
      ASSERT_LT(starts[size_t(s)], end) << run.output;
      if (s + 1 < expected.stages) widest_boundary = std::max(widest_boundary, kLayerOutputs[end - 1]);
      double parameters = 0, parameter_layers = 0;
      for (size_t layer = starts[size_t(s)]; layer < end; ++layer) {
        parameters += kLayerParameters[layer];
        parameter_layers += kLayerParameters[layer] > 0;
      }
      largest_stage = std::max(largest_stage, parameters);
      most_parameter_layers = std::max(most_parameter_layers, parameter_layers);
    }
    const double replica_batch = kBatch / expected.replicas;
    const double boundary_bytes = replica_batch * widest_boundary * 4;
    const double replicas = expected.replicas;
    const double allreduce_bytes = 2 * (replicas - 1) / replicas * largest_stage * 4;
    const auto& phases = run.record["phases"];
    for (const char* phase : {"forward", "backward", "grad_sync"}) {
      const double sent = phases[phase]["sent_bytes_per_rank"].get<double>();
      EXPECT_EQ(sent, phases[phase]["predicted_sent_bytes_per_rank"].get<double>()) << name << " " << phase;
      if (std::string(phase) == "grad_sync") {  // a ring per bucket, whose blocks are whole elements
        EXPECT_NEAR(sent, allreduce_bytes, most_parameter_layers * 2 * (replicas - 1) * 4) << name;
      } else {
        EXPECT_EQ(sent, boundary_bytes) << name << " " << phase;
        // DESIGN 3.7: a boundary carries m messages each way per step (m = --microbatches 4).
        EXPECT_EQ(phases[phase]["sent_messages_per_rank"].get<double>(), 4) << name << " " << phase;
      }
    }
    const auto& time = run.record["step_time_s"];
    EXPECT_NEAR(time["compute"].get<double>() + time["comm"].get<double>() + time["idle"].get<double>(),
                time["total"].get<double>(), 1e-9 + 1e-6 * time["total"].get<double>())
        << name;
  }
}

TEST(PipelineParallelCli, BadGridsAreUsageErrors) {
  const std::string small =
      "train --model conv3x3:4,relu,pool2,fc:10 --data synthetic:1x8x8:100 --batch 8 "
      "--steps 1 --threads 1 --no-eval ";
  for (const auto& [arguments, fragment] : std::vector<std::pair<std::string, std::string>>{
           {small + "--mode hybrid --grid dp=3,pp=2 -n 4", "has 6 ranks"},
           {small + "--mode pipeline --stages 3 -n 4", "does not divide"},
           {small + "--mode pipeline -n 5", "5 pipeline stages for a model of 4 layers"},
           {small + "--mode hybrid --grid dp=1,pp=5 -n 5", "every stage needs at least one layer"},
       }) {
    const RunResult result = run(arguments);
    EXPECT_EQ(result.status, 2) << arguments << "\n" << result.output;
    EXPECT_NE(result.output.find(fragment), std::string::npos) << arguments << "\n" << result.output;
    EXPECT_EQ(std::count(result.output.begin(), result.output.end(), '\n'), 1) << arguments << "\n" << result.output;
  }
}

// In process: the schedules.

std::vector<PipelineAction> schedule(const std::string& name, size_t stage, size_t stages, size_t micro_batches) {
  return train::pipeline_schedule(name, stage, stages, micro_batches);
}

TEST(PipelineSchedule, EveryMicroBatchRunsForwardThenBackwardOnce) {
  for (const std::string name : {"gpipe", "1f1b"})
    for (size_t stages : {1, 2, 3, 4, 7})
      for (size_t micro_batches : {0, 1, 2, 3, 4, 8, 13})
        for (size_t stage = 0; stage < stages; ++stage) {
          std::vector<int> forwards(micro_batches, 0), backwards(micro_batches, 0);
          for (const PipelineAction& action : schedule(name, stage, stages, micro_batches)) {
            ASSERT_LT(action.micro_batch, micro_batches);
            if (action.kind == PipelineAction::Kind::forward) {
              ++forwards[action.micro_batch];
            } else {
              EXPECT_EQ(forwards[action.micro_batch], 1) << name << " backward before forward";
              ++backwards[action.micro_batch];
            }
          }
          EXPECT_EQ(forwards, std::vector<int>(micro_batches, 1)) << name;
          EXPECT_EQ(backwards, std::vector<int>(micro_batches, 1)) << name;
        }
}

TEST(PipelineSchedule, OneFOneBKeepsAtMostStagesMinusStageInFlight) {
  for (size_t stages : {1, 2, 4, 8})
    for (size_t micro_batches : {1, 3, 4, 16})
      for (size_t stage = 0; stage < stages; ++stage) {
        EXPECT_EQ(train::max_in_flight(schedule("1f1b", stage, stages, micro_batches)),
                  std::min(stages - stage, micro_batches));
        EXPECT_EQ(train::max_in_flight(schedule("gpipe", stage, stages, micro_batches)), micro_batches);
      }
  using Kind = PipelineAction::Kind;
  // Stage 0 of 2 stages, 4 micro-batches: one warm-up forward, three forward/backward pairs, one backward.
  EXPECT_EQ(schedule("1f1b", 0, 2, 4), (std::vector<PipelineAction>{{Kind::forward, 0},
                                                                    {Kind::forward, 1},
                                                                    {Kind::backward, 0},
                                                                    {Kind::forward, 2},
                                                                    {Kind::backward, 1},
                                                                    {Kind::forward, 3},
                                                                    {Kind::backward, 2},
                                                                    {Kind::backward, 3}}));
  EXPECT_THROW(schedule("interleaved", 0, 2, 4), UsageError);
}

// Every stage runs its actions in order; a forward waits for the previous stage's forward of the
// same micro-batch, a backward for the next stage's backward. The schedules must finish.
TEST(PipelineSchedule, NeighbouringStagesNeverDeadlock) {
  using Kind = PipelineAction::Kind;
  for (const std::string name : {"gpipe", "1f1b"})
    for (size_t stages : {2, 3, 5})
      for (size_t micro_batches : {1, 2, 5, 9}) {
        std::vector<std::vector<PipelineAction>> actions;
        for (size_t s = 0; s < stages; ++s) actions.push_back(schedule(name, s, stages, micro_batches));
        std::vector<size_t> next(stages, 0);
        std::vector<std::vector<bool>> forwarded(stages, std::vector<bool>(micro_batches, false));
        std::vector<std::vector<bool>> backwarded = forwarded;
        for (bool moved = true; moved;) {
          moved = false;
          for (size_t s = 0; s < stages; ++s) {
            if (next[s] == actions[s].size()) continue;
            const PipelineAction& action = actions[s][next[s]];
            const size_t i = action.micro_batch;
            const bool ready = action.kind == Kind::forward ? (s == 0 || forwarded[s - 1][i])
                                                            : (s + 1 == stages || backwarded[s + 1][i]);
            if (!ready) continue;
            (action.kind == Kind::forward ? forwarded : backwarded)[s][i] = true;
            ++next[s];
            moved = true;
          }
        }
        for (size_t s = 0; s < stages; ++s)
          EXPECT_EQ(next[s], actions[s].size()) << name << ", " << stages << " stages, stage " << s << " stuck";
      }
}

// In process: the balancing.

double slowest_stage(const std::vector<double>& costs, const std::vector<size_t>& boundaries) {
  double slowest = 0;
  for (size_t s = 0; s + 1 < boundaries.size(); ++s) {
    double cost = 0;
    for (size_t i = boundaries[s]; i < boundaries[s + 1]; ++i) cost += costs[i];
    slowest = std::max(slowest, cost);
  }
  return slowest;
}

// The best split by trying every one (choose stages - 1 cut points among layers - 1 places).
double brute_force_slowest(const std::vector<double>& costs, size_t stages) {
  const size_t layers = costs.size();
  double best = INFINITY;
  std::vector<bool> cut(layers - 1, false);
  std::fill(cut.end() - ptrdiff_t(stages - 1), cut.end(), true);
  do {
    std::vector<size_t> boundaries = {0};
    for (size_t i = 0; i + 1 < layers; ++i)
      if (cut[i]) boundaries.push_back(i + 1);
    boundaries.push_back(layers);
    best = std::min(best, slowest_stage(costs, boundaries));
  } while (std::next_permutation(cut.begin(), cut.end()));
  return best;
}

TEST(PipelineBalance, SplitIsContiguousAndOptimal) {
  std::mt19937 random(7);
  std::uniform_real_distribution<double> cost(0.0, 1.0);
  for (size_t layers : {1, 2, 5, 9})
    for (size_t stages = 1; stages <= layers; ++stages)
      for (int trial = 0; trial < 5; ++trial) {
        std::vector<double> costs(layers);
        for (double& c : costs) c = cost(random);
        const std::vector<size_t> boundaries = train::balance_stages(costs, stages);
        ASSERT_EQ(boundaries.size(), stages + 1);
        EXPECT_EQ(boundaries.front(), 0u);
        EXPECT_EQ(boundaries.back(), layers);
        for (size_t s = 0; s < stages; ++s) EXPECT_LT(boundaries[s], boundaries[s + 1]) << "an empty stage";
        EXPECT_DOUBLE_EQ(slowest_stage(costs, boundaries), brute_force_slowest(costs, stages));
      }
  // One heavy layer gets a stage of its own.
  EXPECT_EQ(train::balance_stages({1, 1, 10, 1, 1}, 3), (std::vector<size_t>{0, 2, 3, 5}));
  EXPECT_THROW(train::balance_stages({1, 1}, 3), UsageError);
}

}  // namespace
}  // namespace cclab
