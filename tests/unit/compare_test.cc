// `cclab compare`'s judgement (reports/compare.h) and the U test under it: identical runs are the
// same, a clear slowdown regresses, a speedup improves, a change inside the noise is inconclusive,
// rows join on what they measured, and runs with nothing in common are refused. The runs come from
// load_run, which refuses a record it could not sort into a run, naming the line.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "cclab/error.h"
#include "compare.h"
#include "mann_whitney.h"
#include "results.h"

namespace cclab {
namespace {

TEST(MannWhitney, MatchesTheTextbookValues) {
  // Fully separated samples of 5: U = 0, two-sided p = 0.0122 (normal approximation, continuity corrected).
  EXPECT_NEAR(mann_whitney_p({1, 2, 3, 4, 5}, {6, 7, 8, 9, 10}), 0.0122, 0.0005);
  EXPECT_NEAR(mann_whitney_p({1, 2, 3}, {1, 2, 3}), 1.0, 1e-12);
  EXPECT_EQ(mann_whitney_p({4, 4, 4}, {4, 4}), 1.0);  // every value tied
  EXPECT_EQ(mann_whitney_p({}, {1, 2}), 1.0);
  std::vector<double> a, b;
  for (int i = 0; i < 20; ++i) a.push_back(100 + i), b.push_back(200 + i);
  EXPECT_LT(mann_whitney_p(a, b), 1e-6);
}

// A collective record of `impl` at `bytes` whose iterations took `samples` microseconds.
nlohmann::json record(const std::string& impl, size_t bytes, const std::vector<double>& samples) {
  std::vector<double> sorted = samples;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2];
  return {{"schema", kResultSchema}, {"kind", "collective"}, {"collective", "allreduce"}, {"impl", impl},
          {"transport", "ucx"}, {"mem", "shared"}, {"dtype", "f32"}, {"op", "sum"}, {"root", 0},
          {"inplace", false}, {"ranks", 2}, {"nodes", 1}, {"bytes", bytes}, {"time_us", {{"median", median}}},
          {"busbw_gbps", double(bytes) / median / 1e3}, {"samples_us", samples}};
}

std::vector<double> noisy(double center, double spread, unsigned seed) {
  std::mt19937 random(seed);
  std::uniform_real_distribution<double> jitter(-spread, spread);
  std::vector<double> samples;
  for (int i = 0; i < 20; ++i) samples.push_back(center + jitter(random));
  return samples;
}

TEST(Compare, JudgesEachRow) {
  const std::vector<nlohmann::json> base = {
      record("ring", 1024, noisy(100, 2, 1)),  record("tree", 1024, noisy(100, 2, 2)),
      record("ring", 4096, noisy(100, 2, 3)),  record("tree", 4096, noisy(100, 60, 4)),
      record("ring", 8192, noisy(100, 2, 5))};
  const std::vector<nlohmann::json> fresh = {
      record("ring", 1024, noisy(100, 2, 6)),   // same
      record("tree", 1024, noisy(130, 2, 7)),   // 30% slower: regressed
      record("ring", 4096, noisy(70, 2, 8)),    // faster: improved
      record("tree", 4096, noisy(112, 60, 9)),  // median moved, samples overlap: inconclusive
      record("tree", 8192, noisy(100, 2, 10))}; // only in the new run
  const Comparison comparison = compare_runs(base, fresh, CompareOptions{});
  ASSERT_EQ(comparison.rows.size(), 4u);
  EXPECT_EQ(comparison.rows[0].verdict, Verdict::same);
  EXPECT_EQ(comparison.rows[1].verdict, Verdict::regressed);
  EXPECT_LT(comparison.rows[1].change, -0.2);
  EXPECT_EQ(comparison.rows[2].verdict, Verdict::improved);
  EXPECT_EQ(comparison.rows[3].verdict, Verdict::inconclusive) << comparison.rows[3].change;
  EXPECT_EQ(comparison.only_in_base, 1u);
  EXPECT_EQ(comparison.only_in_fresh, 1u);
  EXPECT_EQ(comparison.rows[1].identity, "allreduce tree ucx f32 sum ranks=2 bytes=1024");

  // Time: lower is better, so the slower row regresses the same way.
  CompareOptions by_time;
  by_time.metric = "time";
  EXPECT_EQ(compare_runs(base, fresh, by_time).rows[1].verdict, Verdict::regressed);
  // Without samples a change beyond the threshold decides alone.
  std::vector<nlohmann::json> bare_base = base, bare_fresh = fresh;
  for (auto& r : bare_base) r.erase("samples_us");
  for (auto& r : bare_fresh) r.erase("samples_us");
  EXPECT_EQ(compare_runs(bare_base, bare_fresh, CompareOptions{}).rows[1].verdict, Verdict::regressed);
}

// A train record of `mode` whose timed steps took `samples` microseconds (64 images each).
nlohmann::json train_record(const std::string& mode, const std::vector<double>& samples) {
  double total = 0;
  for (double us : samples) total += us;
  return {{"schema", kResultSchema}, {"kind", "train"},  {"model", "lenet5"},
          {"mode", mode},            {"ranks", 2},       {"grid", {{"dp", 2}, {"pp", 1}}},
          {"global_batch", 64},      {"device", "cpu"},  {"images_per_s", 64 * double(samples.size()) / total * 1e6},
          {"samples_us", samples}};
}

TEST(Compare, JudgesTrainRowsOnTheirStepTimes) {
  const std::vector<nlohmann::json> base = {train_record("data", noisy(1000, 20, 11)),
                                            train_record("pipeline", noisy(1000, 900, 12))};
  const std::vector<nlohmann::json> fresh = {train_record("data", noisy(1300, 20, 13)),       // slower steps
                                             train_record("pipeline", noisy(1200, 900, 14))};  // inside the noise
  CompareOptions by_images;
  by_images.metric = "images_per_s";
  const Comparison comparison = compare_runs(base, fresh, by_images);
  ASSERT_EQ(comparison.rows.size(), 2u);
  EXPECT_EQ(comparison.rows[0].verdict, Verdict::regressed);
  EXPECT_EQ(comparison.rows[1].verdict, Verdict::inconclusive) << comparison.rows[1].change;
}

TEST(Compare, RefusesRunsWithNothingInCommonAndUnknownMetrics) {
  const std::vector<nlohmann::json> base = {record("ring", 1024, {1, 2, 3})};
  const std::vector<nlohmann::json> other = {record("ring", 2048, {1, 2, 3})};
  EXPECT_THROW(compare_runs(base, other, CompareOptions{}), UsageError);
  CompareOptions speed;
  speed.metric = "speed";
  EXPECT_THROW(compare_runs(base, base, speed), UsageError);
}

// Found by tests/fuzz/fuzz_jsonl: a run_id or start_time of another type escaped as nlohmann's
// type_error, with no file or line.
TEST(LoadRun, RefusesARunIdentityThatIsNotText) {
  const std::filesystem::path file =
      std::filesystem::temp_directory_path() / ("cclab_load_run_test_" + std::to_string(getpid()) + ".jsonl");
  const std::string path = file.string();
  const std::string valid = R"({"schema": "cclab.result/1", "kind": "collective", "run_id": "r1"})";
  for (const std::string second : {R"({"schema": "cclab.result/1", "kind": "collective", "run_id":false})",
                                   R"({"schema": "cclab.result/1", "kind": "summary", "start_time": 5})"}) {
    std::ofstream(path) << valid << "\n" << second << "\n";
    try {
      load_run(path);
      ADD_FAILURE() << "accepted " << second;
    } catch (const UsageError& error) {
      EXPECT_NE(std::string(error.what()).find(path + ":2: "), std::string::npos) << error.what();
      EXPECT_NE(std::string(error.what()).find("is not a string"), std::string::npos) << error.what();
    }
  }
  std::ofstream(path) << valid << "\n";
  EXPECT_EQ(load_run(path).run_id, "r1");
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace cclab
