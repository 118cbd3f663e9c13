// `cclab train --checkpoint-dir/--checkpoint-every/--resume` through the binary: a run of 20 steps
// interrupted after 13 (mid-epoch, with a mid-epoch checkpoint every 4 steps, crossing an epoch
// boundary) and resumed has exactly the per-step losses of the uninterrupted run, on 1 rank, on
// 2 data-parallel ranks and on 2 tensor- and pipeline-parallel ranks (a checkpoint file per rank), and after a killed
// rank on data, pipeline and sync parameter-server ranks; corrupt, truncated
// and mismatched checkpoints are refused with exit 2 and one line naming the file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "results.h"
#include "train_run.h"

namespace cclab {
namespace {

namespace fs = std::filesystem;

// 500 samples / batch 50: 10 steps per epoch, so 20 steps cross epochs and a resume at 13 is mid-epoch.
std::string train_args(const std::string& model = "conv3x3:8,relu,pool2,fc:16,relu,fc:10",
                       const std::string& batch = "50") {
  return "train --model " + model + " --data synthetic:3x16x16:500 --batch " + batch +
         " --threads 1 --no-eval --seed 3";
}
const std::string kRun = train_args();

fs::path scratch(const std::string& tag) {
  const fs::path path = fs::temp_directory_path() / ("cclab_ckpt_" + tag + "_" + std::to_string(getpid()));
  fs::remove_all(path);
  return path;
}

std::vector<double> step_losses(const std::string& arguments, const fs::path& json) {
  fs::remove(json);
  const RunResult result = run(arguments + " --json " + json.string());
  EXPECT_EQ(result.status, 0) << arguments << "\n" << result.output;
  std::vector<double> losses;
  if (fs::exists(json))
    for (const nlohmann::json& record : read_results(json.string()))
      if (record["kind"] == "train") losses = record["step_losses"].get<std::vector<double>>();
  fs::remove(json);
  return losses;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// `mode`: "data" writes the one file every rank shares; the split modes one file per rank.
void expect_resume_equals_uninterrupted(const std::string& ranks, const std::string& mode = "data") {
  const fs::path dir = scratch("dir" + ranks + mode);
  const std::string base = kRun + " -n " + ranks + " --mode " + mode;
  const auto full = step_losses(base + " --steps 20", dir.string() + ".full.jsonl");
  ASSERT_EQ(full.size(), 20u);
  auto first = step_losses(base + " --steps 13 --checkpoint-dir " + dir.string() + " --checkpoint-every 4",
                           dir.string() + ".a.jsonl");
  ASSERT_EQ(first.size(), 13u);
  if (mode == "data" || ranks == "1") {
    EXPECT_TRUE(fs::exists(dir / "checkpoint.bin"));
    EXPECT_FALSE(fs::exists(dir / "checkpoint.tmp"));
  } else {
    for (int rank = 0; rank < std::stoi(ranks); ++rank) {
      EXPECT_TRUE(fs::exists(dir / ("checkpoint.rank" + std::to_string(rank) + ".bin"))) << rank;
      EXPECT_FALSE(fs::exists(dir / ("checkpoint.rank" + std::to_string(rank) + ".tmp"))) << rank;
    }
  }
  const auto second =
      step_losses(base + " --steps 20 --checkpoint-dir " + dir.string() + " --resume", dir.string() + ".b.jsonl");
  ASSERT_EQ(second.size(), 7u);
  first.insert(first.end(), second.begin(), second.end());
  // Exact: the same float operations in the same order on the same state.
  for (size_t step = 0; step < full.size(); ++step) EXPECT_EQ(first[step], full[step]) << "step " << step + 1;
  fs::remove_all(dir);
}

TEST(TrainCheckpoint, ResumedRunEqualsUninterruptedOneRank) { expect_resume_equals_uninterrupted("1"); }

TEST(TrainCheckpoint, ResumedRunEqualsUninterruptedTwoRanks) { expect_resume_equals_uninterrupted("2"); }

// Tensor- and pipeline-parallel ranks hold different parts of the model: one checkpoint each.
TEST(TrainCheckpoint, ResumedRunEqualsUninterruptedTensorParallel) {
  expect_resume_equals_uninterrupted("2", "tensor");
}

TEST(TrainCheckpoint, ResumedRunEqualsUninterruptedPipelineParallel) {
  expect_resume_equals_uninterrupted("2", "pipeline");
}

// A rank killed in the middle of a run (after step 13; checkpoints every 4 steps) ends the job with a
// message naming it; the resumed run starts at the last checkpoint (step 12) and ends with exactly
// the uninterrupted run's losses.
void expect_resume_after_kill_equals_uninterrupted(const std::string& mode) {
  const fs::path dir = scratch("kill" + mode);
  const std::string base = kRun + " -n 2 --mode " + mode;
  const auto full = step_losses(base + " --steps 20", dir.string() + ".full.jsonl");
  ASSERT_EQ(full.size(), 20u);
  const RunResult killed =
      run_command("CCLAB_FAULT_RANK=1 CCLAB_FAULT_AFTER_STEPS=13 CCLAB_FAULT=kill " + std::string(CCLAB_BINARY) + " " +
                  base + " --steps 20 --checkpoint-dir " + dir.string() + " --checkpoint-every 4");
  EXPECT_NE(killed.status, 0) << killed.output;
  EXPECT_NE(killed.output.find("rank 1"), std::string::npos) << killed.output;
  EXPECT_NE(killed.output.find("killed by signal 9"), std::string::npos) << killed.output;
  const RunResult resumed =
      run(base + " --steps 20 --checkpoint-dir " + dir.string() + " --resume --json " + dir.string() + ".b.jsonl");
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("at step 12"), std::string::npos) << resumed.output;
  std::vector<double> second;
  for (const nlohmann::json& record : read_results(dir.string() + ".b.jsonl"))
    if (record["kind"] == "train") second = record["step_losses"].get<std::vector<double>>();
  ASSERT_EQ(second.size(), 8u);
  for (size_t step = 0; step < second.size(); ++step) EXPECT_EQ(second[step], full[12 + step]) << "step " << 13 + step;
  fs::remove(dir.string() + ".b.jsonl");
  fs::remove_all(dir);
}

TEST(TrainCheckpoint, ResumeAfterAKilledRankEqualsUninterruptedDataParallel) {
  expect_resume_after_kill_equals_uninterrupted("data");
}

TEST(TrainCheckpoint, ResumeAfterAKilledRankEqualsUninterruptedPipelineParallel) {
  expect_resume_after_kill_equals_uninterrupted("pipeline");
}

// Sync parameter servers: each rank saves its range and velocity; the workers take the ranges back.
TEST(TrainCheckpoint, ResumeAfterAKilledRankEqualsUninterruptedParameterServer) {
  expect_resume_after_kill_equals_uninterrupted("ps");
}

// A pipeline's stages are balanced by times measured at start-up, which a resumed run might not
// reproduce: it takes the split recorded in the checkpoint instead.
TEST(TrainCheckpoint, ResumedPipelineKeepsTheCheckpointsStageSplit) {
  const fs::path dir = scratch("balance");
  const std::string base = kRun + " -n 2 --mode pipeline";
  const auto full = step_losses(base + " --steps 20 --balance 5,1", dir.string() + ".full.jsonl");
  auto first =
      step_losses(base + " --steps 13 --balance 5,1 --checkpoint-dir " + dir.string(), dir.string() + ".a.jsonl");
  const RunResult resumed = run(base + " --steps 20 --checkpoint-dir " + dir.string() + " --resume");
  EXPECT_EQ(resumed.status, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("stage 1: layers 5 (fc:10"), std::string::npos) << resumed.output;
  const RunResult other = run(base + " --steps 20 --balance 3,3 --checkpoint-dir " + dir.string() + " --resume");
  EXPECT_EQ(other.status, 2) << other.output;
  EXPECT_NE(other.output.find("model split balance=5,1 (this run: balance=3,3)"), std::string::npos) << other.output;
  ASSERT_EQ(full.size(), 20u);
  ASSERT_EQ(first.size(), 13u);
  fs::remove_all(dir);
}

TEST(TrainCheckpoint, RefusesCorruptTruncatedAndMismatchedCheckpoints) {
  const fs::path dir = scratch("bad");
  const fs::path file = dir / "checkpoint.bin";
  ASSERT_EQ(run(kRun + " --steps 5 --checkpoint-dir " + dir.string()).status, 0);
  const std::string good = read_file(file);
  ASSERT_GT(good.size(), 100u);
  const std::string resume = kRun + " --steps 10 --checkpoint-dir " + dir.string() + " --resume";
  const auto expect_refused = [&](const std::string& arguments, const std::string& why) {
    const RunResult result = run(arguments);
    EXPECT_EQ(result.status, 2) << result.output;
    EXPECT_NE(result.output.find(file.string()), std::string::npos) << result.output;
    EXPECT_NE(result.output.find(why), std::string::npos) << result.output;
  };
  std::string flipped = good;
  flipped[flipped.size() / 2] ^= 0x10;  // a parameter byte
  write_file(file, flipped);
  expect_refused(resume, "checksum");
  write_file(file, good.substr(0, good.size() - 7));
  expect_refused(resume, "truncated");
  write_file(file, good.substr(0, 20));
  expect_refused(resume, "truncated");
  write_file(file, good);
  const std::string tail = " --steps 10 --checkpoint-dir " + dir.string() + " --resume";
  expect_refused(train_args("conv3x3:8,relu,pool2,fc:16,relu,fc:10", "25") + tail, "--batch");
  expect_refused(train_args("conv3x3:4,relu,pool2,fc:10") + tail, "--model");
  EXPECT_EQ(run(resume).status, 0);  // the intact file still resumes
  fs::remove_all(dir);
  const RunResult missing = run(kRun + " --steps 10 --checkpoint-dir " + dir.string() + " --resume");
  EXPECT_EQ(missing.status, 2) << missing.output;
  EXPECT_EQ(run(kRun + " --steps 10 --resume").status, 2);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace cclab
