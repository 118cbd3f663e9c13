// --mode fedavg as a user runs it: one local step per round with every worker and no drops trains
// exactly as one process does (colocated and dedicated servers, iid and label-skewed shards, ranks
// and batches that do not divide evenly); workers that drop out are recorded and the run goes on
// past them; the bytes of push and pull equal the prediction, per run and per round; bad flags are
// refused with one line.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "train_run.h"

namespace cclab {
namespace {

const std::string kTraining =
    "train --model conv3x3:4,relu,pool2,fc:6 --data synthetic:3x8x8:600 --steps 10 --batch 31 --threads 1 --no-eval";

/// Per round too: what a round's pushes and pulls sent equals its prediction.
void expect_rounds_as_predicted(const nlohmann::json& record, const std::string& what) {
  expect_push_and_pull_as_predicted(record, what);
  for (const nlohmann::json& round : record["rounds"])
    EXPECT_EQ(round["sent_bytes"], round["predicted_sent_bytes"]) << what << " round " << round["round"];
}

TEST(FederatedAveraging, OneLocalStepWithEveryWorkerEqualsOneProcess) {
  const nlohmann::json one = run_training(kTraining, "fedavg_one").record;
  const std::vector<double> one_losses = step_losses(one);
  ASSERT_EQ(one_losses.size(), 10u);
  const double abs_sum = one["parameter_abs_sum"].get<double>();
  // A generous deadline: with no drops nothing waits for it, and a slow rank must not miss it. Label
  // skew too: the workers' gradients of their classes, weighted by their samples, sum to the batch's.
  for (const std::string placement : {"-n 2", "-n 3", "-n 4", "--servers 1 -n 3", "--servers 1 -n 4",
                                      "--servers 2 -n 4", "-n 3 --shards label-skew"}) {
    const TrainRun run = run_training(kTraining + " --mode fedavg --round-deadline 30 " + placement, "fedavg_k1");
    const std::vector<double> losses = step_losses(run.record);
    ASSERT_EQ(losses.size(), one_losses.size()) << placement;
    for (size_t i = 0; i < losses.size(); ++i)
      EXPECT_NEAR(losses[i], one_losses[i], 1e-4 * std::fabs(one_losses[i])) << placement << " step " << i;
    EXPECT_NEAR(run.record["parameter_abs_sum"].get<double>(), abs_sum, 1e-4 * abs_sum) << placement;
    EXPECT_EQ(run.record["rounds"].size(), 10u) << placement;
    EXPECT_EQ(run.record["dropped_workers"], 0) << placement;
    EXPECT_EQ(run.record["missed_deadline"], 0) << placement;
    expect_rounds_as_predicted(run.record, placement);
  }
}

TEST(FederatedAveraging, DroppedWorkersAreRecordedAndTheRunGoesOn) {
  for (const std::string setup : {"-n 3 --shards iid", "--servers 1 -n 4 --shards label-skew --participation 0.67"}) {
    const TrainRun run =
        run_training(kTraining + " --mode fedavg --local-steps 2 --drop 0.4 --round-deadline 0.5 --timeout 20 " + setup,
                     "fedavg_drop");
    const nlohmann::json& record = run.record;
    ASSERT_EQ(step_losses(record).size(), 10u) << setup;
    for (double loss : step_losses(record)) EXPECT_TRUE(std::isfinite(loss)) << setup;
    ASSERT_EQ(record["rounds"].size(), 5u) << setup;
    EXPECT_GT(record["dropped_workers"].get<double>(), 0) << setup << "\n" << run.output;
    // The servers, by their deadline alone, went on without every upload the seed dropped (and, on a
    // machine so busy that a live worker came later than the deadline, without that one too).
    for (const nlohmann::json& round : record["rounds"])
      EXPECT_GE(round["missed_deadline"].get<double>(), double(round["dropped"].size())) << setup << " " << round;
    EXPECT_NE(run.output.find("uploads dropped by the seed"), std::string::npos) << run.output;
    expect_rounds_as_predicted(record, setup);
  }
}

void expect_usage_error(const std::string& arguments, const std::string& fragment) {
  const RunResult result = run(arguments);
  EXPECT_EQ(result.status, 2) << arguments << "\n" << result.output;
  EXPECT_NE(result.output.find(fragment), std::string::npos) << arguments << "\n" << result.output;
}

TEST(FederatedAveraging, BadFlagsAreRefused) {
  const std::string fedavg = kTraining + " --mode fedavg -n 2";
  expect_usage_error(fedavg + " --local-steps 0", "--local-steps");
  expect_usage_error(fedavg + " --participation 0", "--participation");
  expect_usage_error(fedavg + " --participation 1.5", "--participation");
  expect_usage_error(fedavg + " --drop 1", "--drop");
  expect_usage_error(fedavg + " --drop -0.1", "--drop");
  expect_usage_error(fedavg + " --shards by-colour", "--shards");
  expect_usage_error(fedavg + " --round-deadline 0", "--round-deadline");
  expect_usage_error(fedavg + " --sync async", "--mode ps");
  expect_usage_error(fedavg + " --staleness 2", "--mode ps");
  expect_usage_error(kTraining + " --mode data -n 2 --local-steps 2", "--mode fedavg");
  expect_usage_error(kTraining + " --mode ps -n 2 --drop 0.1", "--mode fedavg");
  expect_usage_error(kTraining + " --mode data -n 2 --servers 1", "--servers");
  expect_usage_error(kTraining + " --mode fedavg --servers 3 -n 3", "leaves no worker");
  expect_usage_error(fedavg + " --checkpoint-dir /tmp/cclab_fedavg_no_checkpoints", "checkpoints");
}

}  // namespace
}  // namespace cclab
