// --mode ps as a user runs it: synchronous parameter servers (colocated and dedicated) train exactly
// as one process does, at rank and batch counts that do not divide evenly; async and ssp train,
// report their staleness and stay within ssp's bound; the bytes of push and pull equal the
// prediction; bad flags are refused with one line.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "train_run.h"

namespace cclab {
namespace {

const std::string kTraining =
    "train --model conv3x3:4,relu,pool2,fc:6 --data synthetic:3x8x8:600 --steps 10 --batch 31 --threads 1 --no-eval";


TEST(ParameterServer, SyncEqualsOneProcess) {
  const std::vector<double> one = step_losses(run_training(kTraining, "ps_one").record);
  ASSERT_EQ(one.size(), 10u);
  const nlohmann::json one_record = run_training(kTraining, "ps_one_sums").record;
  for (const std::string servers : {"--servers colocated -n 3", "--servers 1 -n 3", "--servers 2 -n 5"}) {
    const TrainRun run = run_training(kTraining + " --mode ps " + servers, "ps_sync");
    const std::vector<double> losses = step_losses(run.record);
    ASSERT_EQ(losses.size(), one.size()) << servers;
    for (size_t i = 0; i < one.size(); ++i) EXPECT_NEAR(losses[i], one[i], 1e-4 * std::fabs(one[i])) << servers;
    // The servers' ranges together are the whole model, each parameter once.
    const double abs_sum = one_record["parameter_abs_sum"].get<double>();
    EXPECT_NEAR(run.record["parameter_abs_sum"].get<double>(), abs_sum, 1e-4 * abs_sum) << servers;
    EXPECT_EQ(run.record["staleness"]["max"], 0) << servers;
    expect_push_and_pull_as_predicted(run.record, servers);
  }
}

// A dedicated server of P parameters serves each of W workers: it sends W P w per step (pull) and a
// worker sends P w (push), DESIGN 3.7's formulas.
TEST(ParameterServer, ADedicatedServerCarriesEveryWorkersTraffic) {
  const nlohmann::json record = run_training(kTraining + " --mode ps --servers 1 -n 3", "ps_bytes").record;
  const double parameter_bytes = record["parameters"].get<double>() * 4;
  EXPECT_EQ(record["phases"]["push"]["sent_bytes_per_rank"].get<double>(), parameter_bytes);
  EXPECT_EQ(record["phases"]["pull"]["sent_bytes_per_rank"].get<double>(), 2 * parameter_bytes);
}

TEST(ParameterServer, AsyncAndSspTrainAndReportStaleness) {
  for (const std::string mode :
       {"--sync async --servers 1 -n 3", "--sync async -n 3", "--sync ssp --staleness 0 -n 3 --straggler 1:2",
        "--sync ssp --staleness 2 --servers 2 -n 5 --straggler 0:3"}) {
    const TrainRun run = run_training(kTraining + " --mode ps " + mode, "ps_async");
    const std::vector<double> losses = step_losses(run.record);
    ASSERT_EQ(losses.size(), 10u) << mode;
    for (double loss : losses) EXPECT_TRUE(std::isfinite(loss)) << mode;
    EXPECT_LT(losses.back(), losses.front()) << mode << "\n" << run.output;
    const nlohmann::json& staleness = run.record["staleness"];
    EXPECT_GT(staleness["pushes"].get<double>(), 0) << mode;
    EXPECT_GE(staleness["max"].get<double>(), staleness["mean"].get<double>()) << mode;
    EXPECT_NE(run.output.find("# staleness of the applied gradients"), std::string::npos) << run.output;
    expect_push_and_pull_as_predicted(run.record, mode);
  }
}

void expect_usage_error(const std::string& arguments, const std::string& fragment) {
  const RunResult result = run(arguments);
  EXPECT_EQ(result.status, 2) << arguments << "\n" << result.output;
  EXPECT_NE(result.output.find(fragment), std::string::npos) << arguments << "\n" << result.output;
}

TEST(ParameterServer, BadFlagsAreRefused) {
  expect_usage_error(kTraining + " --mode ps --servers 3 -n 3", "leaves no worker");
  expect_usage_error(kTraining + " --mode ps --servers many -n 3", "--servers");
  expect_usage_error(kTraining + " --mode ps --sync eventually -n 2", "--sync");
  expect_usage_error(kTraining + " --mode ps --staleness 3 -n 2", "--staleness");
  expect_usage_error(kTraining + " --mode data --sync async -n 2", "--mode ps");
  expect_usage_error(kTraining + " --mode ps --straggler 1 -n 2", "--straggler");
  expect_usage_error(kTraining + " --mode ps --straggler 2:2 --servers 1 -n 3", "not a worker");
}

}  // namespace
}  // namespace cclab
