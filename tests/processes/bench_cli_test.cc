// Multi-process tests: drive the cclab binary as a user would (local launcher, mpirun) and check
// results, exit statuses and messages.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>

#include "cclab/device.h"
#include "results.h"
#include "run_command.h"
#include "trace_check.h"

namespace cclab {
namespace {

RunResult run(const std::string& command) { return run_command(command); }

const std::string kCclab = CCLAB_BINARY;

class CliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Open MPI refuses to run as root without both of these (CI machines run as root).
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
  }
  void SetUp() override {
    // A parameterised test's name has a '/' in it ("ChecksOnRealRanks/allreduce"): one folder, not two.
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::replace(name.begin(), name.end(), '/', '_');
    dir_ = std::filesystem::temp_directory_path() / ("cclab_cli_test_" + std::to_string(getpid()) + "_" + name);
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string json() const { return (dir_ / "results.jsonl").string(); }
  std::filesystem::path dir_;
};

// The measurement records of a results file: a sweep also writes a profile and a summary record.
std::vector<nlohmann::json> measured_records(const std::string& path) {
  std::vector<nlohmann::json> measured;
  for (nlohmann::json& record : read_results(path))
    if (record["kind"] == "collective" || record["kind"] == "p2p") measured.push_back(std::move(record));
  return measured;
}

// Bad input: exit status 2 and one line that says it is an error.
void expect_usage_error(const std::string& args) {
  const RunResult result = run(kCclab + " " + args);
  EXPECT_EQ(result.status, 2) << args << "\n" << result.output;
  EXPECT_EQ(std::count(result.output.begin(), result.output.end(), '\n'), 1) << args << "\n" << result.output;
  EXPECT_NE(result.output.find("error"), std::string::npos) << args << "\n" << result.output;
}

// A cost model profile fitted once per test process, for runs that check results rather than the
// model: without --profile every run calibrates first, which takes seconds per run.
const std::string& fitted_profile() {
  static const std::string path = [] {
    const std::string profile =
        (std::filesystem::temp_directory_path() / ("cclab_cli_test_profile_" + std::to_string(getpid()) + ".json"))
            .string();
    const RunResult result = run(kCclab + " bench p2p -n 2 --fit --iters 5 -e 1M --profile " + profile);
    EXPECT_EQ(result.status, 0) << result.output;
    std::atexit([] {
      std::filesystem::remove(std::filesystem::temp_directory_path() /
                              ("cclab_cli_test_profile_" + std::to_string(getpid()) + ".json"));
    });
    return profile;
  }();
  return path;
}

// Every record checked: no wrong element, measured bytes = simulator's = 2(N-1)/N count size.
void expect_correct_ring_records(const std::vector<nlohmann::json>& records, int ranks) {
  ASSERT_FALSE(records.empty());
  for (const auto& record : records) {
    EXPECT_EQ(record["schema"], "cclab.result/1");
    EXPECT_EQ(record["kind"], "collective");
    EXPECT_EQ(record["ranks"], ranks);
    EXPECT_EQ(record["wrong"], 0) << record.dump();
    if (record["impl"] != "ring") continue;
    const double count = record["count"], element = 4;
    const double formula = 2.0 * (ranks - 1) / ranks * count * element;
    EXPECT_EQ(record["sent_bytes_per_rank"], record["predicted_sent_bytes_per_rank"]) << record.dump();
    EXPECT_EQ(record["recv_bytes_per_rank"], record["predicted_recv_bytes_per_rank"]) << record.dump();
    // Chunk rounding: in each slice of ranks x segment a rank forwards at most one element more
    // than the average per step.
    const double segment_elements = record["segment_bytes"].get<double>() / element;
    const double slices = std::max(1.0, std::ceil(count / (segment_elements * ranks)));
    EXPECT_NEAR(record["sent_bytes_per_rank"].get<double>(), formula, 2.0 * (ranks - 1) * element * slices)
        << record.dump();
  }
}

TEST_F(CliTest, RingIsCorrectOnTwoThreeAndFourLocalRanks) {
  for (int ranks : {2, 3, 4}) {  // 3 and 4 oversubscribe a 2-core machine: waits must yield
    const RunResult result = run(kCclab + " bench allreduce --impl ring -n " + std::to_string(ranks) +
                                 " -b 8 -e 4M -f 8 --iters 3 -w 1 --check --segment 64K --profile " + fitted_profile() +
                                 " --json " + json());
    ASSERT_EQ(result.status, 0) << result.output;
    auto records = measured_records(json());
    EXPECT_EQ(records.size(), 7u);  // 8 B .. 2 MiB by x8
    EXPECT_EQ(records.back()["rounds"], 1);  // one implementation: no turns to take
    EXPECT_FALSE(records.back().contains("turns"));
    expect_correct_ring_records(records, ranks);
    std::filesystem::remove(json());
  }
}

TEST_F(CliTest, EveryDtypeAndOpChecksOnThreeRanks) {
  for (const char* dtype : {"f32", "f64", "f16", "bf16", "i32", "i64", "u8"})
    for (const char* op : {"sum", "prod", "min", "max", "avg"}) {
      const RunResult result = run(kCclab + " bench allreduce -n 3 -b 1000 -e 1000 --iters 1 -w 0 --check -d " +
                                   dtype + " -o " + op + " --profile " + fitted_profile() + " --json " + json());
      ASSERT_EQ(result.status, 0) << dtype << " " << op << "\n" << result.output;
    }
  for (const auto& record : measured_records(json())) EXPECT_EQ(record["wrong"], 0) << record.dump();
}

// Arrays larger than any last-level cache: the direct algorithms' final copies stream to memory
// (cclab/streaming_copy.h), checked on 2 and 3 ranks for every collective that makes such copies.
TEST_F(CliTest, DirectAlgorithmsCheckOnArraysLargerThanTheCaches) {
  for (const char* collective : {"allgather", "broadcast", "allreduce"})
    for (const char* ranks : {"2", "3"}) {
      const RunResult result = run(kCclab + " bench " + collective + " -n " + ranks +
                                   " --impl direct -b 192M -e 192M --iters 1 -w 0 --check --profile " +
                                   fitted_profile());
      ASSERT_EQ(result.status, 0) << collective << " " << ranks << "\n" << result.output;
      EXPECT_NE(result.output.find("# wrong elements: 0 OK"), std::string::npos) << result.output;
    }
}

TEST_F(CliTest, InPlaceRingIsCorrect) {
  const RunResult result =
      run(kCclab + " bench allreduce -n 2 -b 1K -e 1M -f 32 --iters 2 --check --inplace --json " + json());
  ASSERT_EQ(result.status, 0) << result.output;
  expect_correct_ring_records(measured_records(json()), 2);
}

TEST_F(CliTest, RingBesideMpiThroughTheLocalLauncher) {
  const RunResult result =
      run(kCclab + " bench allreduce -n 2 --impl ring,mpi -b 8 -e 8M -f 16 --iters 3 --check --json " + json());
  ASSERT_EQ(result.status, 0) << result.output;
  const auto records = measured_records(json());
  ASSERT_EQ(records.size(), 12u);
  expect_correct_ring_records(records, 2);
  EXPECT_EQ(records[1]["impl"], "mpi");
  EXPECT_TRUE(records[1]["sent_bytes_per_rank"].is_null());
  EXPECT_NE(result.output.find("median_us"), std::string::npos);
  // Two implementations take turns in rounds from 1 MiB on (at most 5, one iteration each here);
  // the bytes are still per timed iteration (expect_correct_ring_records).
  EXPECT_EQ(records[0]["rounds"], 1);
  EXPECT_EQ(records.back()["bytes"], 8 << 20);
  EXPECT_EQ(records.back()["rounds"], 3);
  EXPECT_EQ(records.back()["turns"]["from_bytes"], 1 << 20);
  EXPECT_NE(result.output.find("from 1048576 B on in 3 rounds taking turns"), std::string::npos) << result.output;
}

TEST_F(CliTest, JoinsAnMpirunJob) {
  const RunResult result = run("mpirun -np 2 --oversubscribe " + kCclab +
                               " bench allreduce --impl ring,mpi -b 8 -e 64K -f 8 --iters 3 --check --json " + json());
  ASSERT_EQ(result.status, 0) << result.output;
  const auto records = measured_records(json());
  expect_correct_ring_records(records, 2);
  EXPECT_EQ(records[0]["launcher"], "mpi");
}

TEST_F(CliTest, RankCountMustMatchTheLauncher) {
  const RunResult result = run("mpirun -np 2 --oversubscribe " + kCclab + " bench allreduce -n 3 -e 8");
  EXPECT_NE(result.status, 0) << result.output;
  EXPECT_NE(result.output.find("differs from the launcher's world size 2"), std::string::npos) << result.output;
}

TEST_F(CliTest, AKilledRankEndsTheJobAndKeepsEarlierRecords) {
  const RunResult result = run("CCLAB_FAULT_RANK=1 CCLAB_FAULT_AFTER_RECORDS=2 CCLAB_FAULT=kill " + kCclab +
                               " bench allreduce -n 2 -b 8 -e 1M -f 4 --iters 2 --timeout 10 --json " + json());
  EXPECT_NE(result.status, 0);
  EXPECT_LT(result.seconds, 30);
  EXPECT_NE(result.output.find("rank 1"), std::string::npos) << result.output;
  // Rank 1 dies right after the second size's results reached both ranks: rank 0 wrote the first
  // record before that size began, and writes the second unless the supervisor stops it first.
  const auto records = measured_records(json());
  ASSERT_GE(records.size(), 1u);
  EXPECT_LE(records.size(), 2u);
  EXPECT_EQ(records[0]["bytes"], 8);
}

TEST_F(CliTest, AStalledRankEndsTheJobWithinTheTimeout) {
  const RunResult result = run("CCLAB_FAULT_RANK=1 CCLAB_FAULT_AFTER_RECORDS=1 CCLAB_FAULT=stall " + kCclab +
                               " bench allreduce -n 2 -b 8 -e 1M -f 4 --iters 2 --timeout 3 --json " + json());
  EXPECT_NE(result.status, 0);
  EXPECT_LT(result.seconds, 20);
  EXPECT_NE(result.output.find("rank 1"), std::string::npos) << result.output;
  EXPECT_EQ(measured_records(json()).size(), 1u);
}

// The direct algorithms read a peer's memory where it lies: a peer that dies or stops answering
// mid-sweep still ends the job within --timeout, naming it.
TEST_F(CliTest, ADeadOrStalledPeerEndsADirectCollectiveWithinTheTimeout) {
  for (const char* fault : {"kill", "stall"}) {
    const RunResult result = run(std::string("CCLAB_FAULT_RANK=1 CCLAB_FAULT_AFTER_RECORDS=1 CCLAB_FAULT=") + fault +
                                 " " + kCclab + " bench allreduce --impl direct -n 3 -b 8 -e 1M -f 4 --iters 2 " +
                                 "--timeout 3 --json " + json());
    EXPECT_NE(result.status, 0) << fault;
    EXPECT_LT(result.seconds, 20) << fault;
    EXPECT_NE(result.output.find("rank 1"), std::string::npos) << fault << "\n" << result.output;
    EXPECT_EQ(measured_records(json()).size(), 1u) << fault;
    std::filesystem::remove(json());
  }
}

// Arrays in node-shared memory (--mem shared, the default) are read in place; private ones
// (--mem host) through one copy into the owner's staging area; the bytes peers read count as sent.
TEST_F(CliTest, DirectAlgorithmsCheckOnSharedAndPrivateMemory) {
  for (const char* mem : {"shared", "host"}) {
    const RunResult result = run(kCclab + " bench reduce_scatter --impl direct,ring -n 3 -b 12 -e 3M -f 16 " +
                                 "--iters 2 -w 1 --check --mem " + mem + " --profile " + fitted_profile() +
                                 " --json " + json());
    ASSERT_EQ(result.status, 0) << mem << "\n" << result.output;
    const auto records = measured_records(json());
    ASSERT_EQ(records.size(), 10u) << mem;  // 12 B .. 768 KiB by x16, two implementations
    for (const auto& record : records) {
      EXPECT_EQ(record["mem"], mem) << record.dump();
      EXPECT_EQ(record["wrong"], 0) << record.dump();
      EXPECT_EQ(record["sent_bytes_per_rank"], record["predicted_sent_bytes_per_rank"]) << record.dump();
    }
    std::filesystem::remove(json());
  }
}

// Every hand-written algorithm (the default --impl) of every collective, on real processes over
// UCX: no wrong element, and the transport's byte counters equal the simulator's prediction.
// One test per collective: every hand-written algorithm, in and out of place, on 2, 3 and 4 ranks
// of one node and on 2 nodes of 2 ranks.
class EveryHandWrittenAlgorithm : public CliTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(EveryHandWrittenAlgorithm, ChecksOnRealRanks) {
  const std::string collective = GetParam();
  const bool rooted = collective == "broadcast" || collective == "reduce";
  for (const std::string layout : {"-n 2", "-n 3", "-n 4", "-n 4 --ranks-per-node 2"})
    for (const char* inplace : {"", " --inplace"}) {
      const RunResult result = run(kCclab + " bench " + collective + " " + layout +
                                   " -b 4 -e 300K -f 37 --iters 2 -w 1 --check --segment 16K -o avg" +
                                   (rooted ? " -r 1" : "") + inplace + " --profile " + fitted_profile() +
                                   " --json " + json());
      ASSERT_EQ(result.status, 0) << collective << " " << layout << inplace << "\n" << result.output;
    }
  const auto records = measured_records(json());
  ASSERT_FALSE(records.empty());
  for (const auto& record : records) {
    EXPECT_EQ(record["wrong"], 0) << record.dump();
    EXPECT_EQ(record["sent_bytes_per_rank"], record["predicted_sent_bytes_per_rank"]) << record.dump();
    EXPECT_EQ(record["recv_bytes_per_rank"], record["predicted_recv_bytes_per_rank"]) << record.dump();
  }
}

INSTANTIATE_TEST_SUITE_P(Collectives, EveryHandWrittenAlgorithm,
                         ::testing::Values("allreduce", "broadcast", "reduce", "reduce_scatter", "allgather"),
                         [](const ::testing::TestParamInfo<const char*>& info) { return std::string(info.param); });

// Hand-written algorithms over the MPI transport, and over UCX inside nodes with MPI between them.
TEST_F(CliTest, MpiTransportAndInterNodeTransport) {
  const std::string checked = " -b 4 -e 100K -f 50 --iters 2 --check --profile " + fitted_profile() + " --json ";
  RunResult result =
      run(kCclab + " bench allreduce -n 3 --transport mpi --impl ring,rabenseifner,tree" + checked + json());
  ASSERT_EQ(result.status, 0) << result.output;
  result = run(kCclab + " bench allreduce -n 4 --ranks-per-node 2 --inter-transport mpi --impl hier_rab,hier_rail" +
               checked + json());
  ASSERT_EQ(result.status, 0) << result.output;
  result = run(kCclab + " bench p2p -n 2 --transport mpi -b 8 -e 64K -f 64 --iters 5 --json " + json());
  ASSERT_EQ(result.status, 0) << result.output;
  const auto records = measured_records(json());
  ASSERT_EQ(records.size(), 9u + 6u + 3u);
  for (size_t i = 0; i < 15; ++i) {
    EXPECT_EQ(records[i]["wrong"], 0) << records[i].dump();
    EXPECT_EQ(records[i]["sent_bytes_per_rank"], records[i]["predicted_sent_bytes_per_rank"]) << records[i].dump();
  }
  EXPECT_EQ(records[0]["transport"], "mpi");
  EXPECT_EQ(records[9]["transport"], "ucx+mpi");
  EXPECT_EQ(records[15]["transport"], "mpi");
  EXPECT_EQ(run(kCclab + " bench allreduce --transport tcp").status, 2);
}

TEST_F(CliTest, EveryCollectiveOfMpiChecksInAndOutOfPlace) {
  for (const char* collective : {"broadcast", "reduce", "reduce_scatter", "allgather", "allreduce"})
    for (const char* inplace : {"", " --inplace"}) {
      const RunResult result = run(kCclab + " bench " + collective + " -n 3 --impl mpi -b 4 -e 64K -f 16 --iters 2" +
                                   " --check -o avg -d f64 --profile " + fitted_profile() + " --json " + json() +
                                   inplace +
                                   (std::string(collective) == "broadcast" || std::string(collective) == "reduce"
                                        ? " -r 2"
                                        : ""));
      ASSERT_EQ(result.status, 0) << collective << inplace << "\n" << result.output;
    }
  const auto records = measured_records(json());
  EXPECT_EQ(records.size(), 5u * 2 * 4);
  for (const auto& record : records) EXPECT_EQ(record["wrong"], 0) << record.dump();
}

TEST_F(CliTest, PointToPointLatencyAndBandwidthAreSaneAndMonotone) {
  RunResult result = run(kCclab + " bench p2p -n 2 -b 8 -e 1M -f 16 --iters 20 --json " + json());
  ASSERT_EQ(result.status, 0) << result.output;
  result = run(kCclab + " bench p2p -n 2 --test bw -b 1K -e 1M -f 32 --iters 5 --window 8 --json " + json());
  ASSERT_EQ(result.status, 0) << result.output;
  const auto records = measured_records(json());
  ASSERT_EQ(records.size(), 5u + 3u);
  // Latency grows with size (a 1 MiB message cannot be faster than 8 bytes), bandwidth is positive
  // (how it grows with size is a speed, which a loaded machine may not show).
  EXPECT_GT(records[4]["latency_us"].get<double>(), records[0]["latency_us"].get<double>());
  EXPECT_GT(records[0]["latency_us"].get<double>(), 0);
  for (size_t i = 5; i < records.size(); ++i) EXPECT_GT(records[i]["bw_gbps"].get<double>(), 0);
}

TEST_F(CliTest, AllPairsPrintsAMatrix) {
  const RunResult result = run(kCclab + " bench p2p -n 3 --pairs all --test bibw -b 64K -e 64K --iters 3 --window 4");
  ASSERT_EQ(result.status, 0) << result.output;
  EXPECT_NE(result.output.find("row = from, column = to"), std::string::npos) << result.output;
}

TEST_F(CliTest, FittedProfileDrivesAutoAndPredictions) {
  const std::string profile = (dir_ / "profile.json").string();
  RunResult result = run(kCclab + " bench p2p -n 2 --fit --iters 10 -e 1M --profile " + profile);
  ASSERT_EQ(result.status, 0) << result.output;
  result = run(kCclab + " bench allreduce -n 2 --impl auto,ring -b 8 -e 1M -f 32 --iters 3 --check --profile " +
               profile + " --json " + json());
  ASSERT_EQ(result.status, 0) << result.output;
  for (const auto& record : measured_records(json())) {
    EXPECT_EQ(record["wrong"], 0);
    EXPECT_GT(record["pred_us"].get<double>(), 0) << record.dump();
    if (record["impl"] != "auto") continue;
    EXPECT_FALSE(record["selected"].get<std::string>().empty());
    // The model's pick, or the fastest of the algorithms it could not tell apart, which were timed.
    const std::string by = record["selected_by"];
    EXPECT_TRUE(by == "model" || by == "measured") << by;
    if (by == "measured") {
      EXPECT_TRUE(record["probe_us"].contains(record["selected"].get<std::string>()));
    }
  }
  EXPECT_EQ(run(kCclab + " bench allreduce -n 2 --profile /nonexistent.json -e 8").status, 2);
}

TEST_F(CliTest, BadInputGivesOneLineAndStatusTwo) {
  const std::vector<std::string> bad = {
      "bench allreduce --no-such-flag",       "bench allreduce --impl nosuch",
      "bench allreduce -d f128",              "bench allreduce -o xor",
      "bench allreduce -b 12Q",               "bench allreduce -b 1M -e 1K",
      "bench allreduce -n 0",                 "bench allreduce --bind sometimes",
      "bench nosuchcollective",               "bench allreduce -r 1",
      "bench broadcast -n 2 -r 2",            "bench p2p --test sideways",
      "bench p2p -n 1",                       "bench allreduce --impl ''",
      "bench allreduce -f nan",               "bench allreduce -f 0.5",
      "bench allreduce -e 17592186044417M",
  };
  for (const std::string& args : bad) expect_usage_error(args);
}

// Every numeric flag has its range; sweeps, rank counts and output paths are bounded and checked
// before any rank starts: one line, exit 2, at once.
TEST_F(CliTest, FlagsOutOfRangeAndBadPathsAreRefusedBeforeAnyWork) {
  std::ofstream(dir_ / "a_file") << "x";
  std::filesystem::create_directories(dir_ / "a_dir.json");
  const std::string file = (dir_ / "a_file").string(), directory = (dir_ / "a_dir.json").string();
  const std::vector<std::string> bad = {
      "bench allreduce -n -1",
      "bench allreduce -n 1000",
      "bench allreduce --timeout inf",
      "bench allreduce --timeout nan",
      "bench allreduce --timeout 1e12",
      "bench allreduce --timeout -5",
      "bench allreduce --iters -1",
      "bench allreduce --iters 1.5",
      "bench allreduce -w nan",
      "bench broadcast -r -1",
      "bench allreduce --ranks-per-node -2",
      "bench allreduce -b 1 -e 64G -f 1 -i 1",
      "bench allreduce -b 8 -e 64M -f 1.0000001",
      "bench allreduce --json " + directory,
      "bench allreduce --json " + file + "/results.jsonl",
      "bench p2p -n 2 --fit --profile " + directory,
      "bench allreduce --profile " + directory,
  };
  for (const std::string& args : bad) {
    const auto start = std::chrono::steady_clock::now();
    expect_usage_error(args);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2)) << args;
  }
  // More local ranks than the default bound, asked for on purpose, pass the check.
  EXPECT_EQ(run(kCclab + " bench allreduce -n 70 --max-local-ranks 70 --bind sometimes").output.find("-n 70"),
            std::string::npos);
}

// nccl-tests habits get a hint in the error line, and every parse error names the subcommand's help.
TEST_F(CliTest, NcclTestsHabitsGetAHint) {
  const std::vector<std::pair<std::string, std::string>> habits = {
      {"bench allreduce -c 5", "-c/--check takes no value"},
      {"bench allreduce -J f.json", "-J FILE is --json FILE here"},
      {"bench allreduce -g 1", "nccl-tests' -g (GPUs per thread)"},
      {"bench allreduce -n 100", "-n is ranks, as mpirun -n; iterations are --iters"},
      {"bench allreduce --nosuch", "see 'cclab bench allreduce --help'"},
  };
  for (const auto& [args, hint] : habits) {
    expect_usage_error(args);
    EXPECT_NE(run(kCclab + " " + args).output.find(hint), std::string::npos) << args;
  }
}

// A profile is a file a reader must not trust: negative or infinite costs, a break at 0 bytes,
// unsorted or empty curves and oversized files are refused with the reason.
TEST_F(CliTest, ProfilesWithValuesOutOfRangeAreRefused) {
  nlohmann::json good = nlohmann::json::parse(std::ifstream(fitted_profile()));
  ASSERT_EQ(run(kCclab + " bench allreduce -n 2 -b 8 -e 8 --iters 1 -w 0 --profile " + fitted_profile()).status, 0);
  const std::vector<std::pair<std::string, std::function<void(nlohmann::json&)>>> damages = {
      {"alpha_us is -1", [](nlohmann::json& p) { p["cached"]["intra_node"]["alpha_us"] = -1.0; }},
      {"gamma_us_per_byte is", [](nlohmann::json& p) { p["streaming"]["gamma_us_per_byte"] = -0.5; }},
      {"protocol_bytes is 0",
       [](nlohmann::json& p) {
         auto& link = p["cached"]["inter_node"];
         link["protocol_bytes"] = 0;
         link["large_alpha_us"] = 1.0;
         link["large_beta_us_per_byte"] = 0.001;
       }},
      {"streaming_curve has 0 points", [](nlohmann::json& p) { p["streaming_curve"] = nlohmann::json::array(); }},
      {"kernel_streaming_curve is not sorted",
       [](nlohmann::json& p) { p["kernel_streaming_curve"] = {{1 << 30, 0.5}, {1 << 20, 0.7}}; }},
      {"point 0 is not a footprint", [](nlohmann::json& p) { p["streaming_curve"] = {{1 << 20, 1.5}}; }},
      {"larger than any cclab writes",
       [](nlohmann::json& p) { p["padding"] = std::string(size_t{2} << 20, ' '); }},
  };
  for (const auto& [reason, damage] : damages) {
    nlohmann::json profile = good;
    damage(profile);
    const std::string path = (dir_ / "damaged.json").string();
    std::ofstream(path) << profile.dump();
    const RunResult result = run(kCclab + " bench allreduce -n 2 --profile " + path);
    EXPECT_EQ(result.status, 2) << reason << "\n" << result.output;
    EXPECT_NE(result.output.find(reason), std::string::npos) << reason << "\n" << result.output;
  }
}

// As nccl-tests, a sweep ends with the wrong elements and the average busbw per implementation,
// and exits 1 when an element was wrong (here made wrong by a test hook on rank 0) or an average is
// below --min-busbw; under mpirun too.
TEST_F(CliTest, WrongElementsAndASlowRunFailWithStatusOne) {
  const std::string sweep = " bench allreduce -b 8 -e 1K -f 8 --iters 2 -w 0 --impl ring,mpi --profile " +
                            fitted_profile() + " --json " + json();
  RunResult result = run(kCclab + sweep + " -n 2 --check");
  EXPECT_EQ(result.status, 0) << result.output;
  EXPECT_NE(result.output.find("# wrong elements: 0 OK"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("# average busbw over the sizes: ring "), std::string::npos) << result.output;
  result = run("CCLAB_FAULT_RANK=0 CCLAB_FAULT=wrong " + kCclab + sweep + " -n 2 --check");
  EXPECT_EQ(result.status, 1) << result.output;
  EXPECT_NE(result.output.find(" FAILED"), std::string::npos) << result.output;
  EXPECT_EQ(result.output.find("# wrong elements: 0 OK"), std::string::npos) << result.output;
  result = run("CCLAB_FAULT_RANK=0 CCLAB_FAULT=wrong mpirun -np 2 --oversubscribe " + kCclab + sweep + " --check");
  EXPECT_EQ(result.status, 1) << result.output;
  result = run(kCclab + sweep + " -n 2 --min-busbw 100000");
  EXPECT_EQ(result.status, 1) << result.output;
  EXPECT_NE(result.output.find("# --min-busbw 100000 GB/s: ring, mpi below, FAILED"), std::string::npos)
      << result.output;
  const auto records = read_results(json());
  ASSERT_FALSE(records.empty());
  EXPECT_EQ(records.back()["kind"], "summary");
  EXPECT_EQ(records.back()["passed"], false);
  EXPECT_EQ(records.back()["min_busbw_gbps"], 100000);
}

// Every record of a run carries its identity: one run id and start time for the run, the ranks'
// hosts, the settings that change results, the build; a run writes its profile first and its
// summary last.
TEST_F(CliTest, RecordsCarryTheRunsIdentity) {
  for (int run_index = 0; run_index < 2; ++run_index) {
    const RunResult result = run("UCX_RNDV_THRESH=8192 CCLAB_TOKEN=secret-secret-secret " + kCclab +
                                 " bench allreduce -n 2 -b 8 -e 64 -f 8 --iters 1 -w 0 --impl ring,direct --profile " +
                                 fitted_profile() + " --json " + json());
    ASSERT_EQ(result.status, 0) << result.output;
  }
  const auto records = read_results(json());
  constexpr size_t kPerRun = 1 + 2 * 2 + 1;  // profile, 2 sizes x 2 implementations, summary
  ASSERT_EQ(records.size(), 2 * kPerRun);
  EXPECT_EQ(records.front()["kind"], "profile");
  EXPECT_EQ(records[kPerRun - 1]["kind"], "summary");
  EXPECT_NE(records.front()["run_id"], records.back()["run_id"]);
  for (size_t i = 0; i < records.size(); ++i) {
    const nlohmann::json& record = records[i];
    EXPECT_EQ(record["run_id"], records[i < kPerRun ? 0 : kPerRun]["run_id"]);
    EXPECT_EQ(record["run_id"].get<std::string>().size(), 16u);
    EXPECT_EQ(record["start_time"].get<std::string>().size(), std::string("2026-12-05T14:07:55Z").size());
    EXPECT_EQ(record["hosts"].size(), 2u);
    EXPECT_EQ(record["settings"]["UCX_RNDV_THRESH"], "8192");
    EXPECT_FALSE(record["settings"].contains("CCLAB_TOKEN"));
    EXPECT_TRUE(record["env"]["git_dirty"].is_boolean());
    EXPECT_FALSE(record["env"]["build_type"].get<std::string>().empty());
    EXPECT_FALSE(record["env"]["compiler"].get<std::string>().empty());
    if (record["kind"] == "collective") {
      EXPECT_EQ(record["mem"], "shared");
    }
  }
}

// GPU requests that this machine or build cannot serve end before any rank starts, with one line
// that says why: GPU-only implementations and transports without --mem cuda, host-only ones with
// it, and --mem cuda without a usable GPU (on a machine with one, that part does not apply).
TEST_F(CliTest, GpuRequestsThatCannotBeServedAreRefusedBeforeAnyRankStarts) {
  for (const char* args : {"bench allreduce --impl nccl", "bench allreduce --transport nccl --impl ring",
                                  "bench broadcast --impl ring,nccl", "bench allreduce --mem gpu",
                                  "bench p2p --transport nccl"})
    expect_usage_error(args);
  const RunResult nccl = run(kCclab + " bench reduce_scatter --impl nccl -n 2");
  EXPECT_NE(nccl.output.find("--impl nccl runs on GPU memory: add --mem cuda"), std::string::npos) << nccl.output;
  const RunResult graph = run(kCclab + " bench allreduce -G 5");
  EXPECT_EQ(graph.status, 2) << graph.output;
  EXPECT_NE(graph.output.find("--cuda-graph captures GPU work: it needs --mem cuda"), std::string::npos)
      << graph.output;
  for (const char* args : {"bench p2p --impl nccl", "bench p2p --mem cuda", "bench p2p --impl mpi",
                           "bench p2p --impl nccl --mem cuda --fit", "bench p2p --transport device-loopback",
                           "bench allreduce --transport device-loopback --mem cuda --inter-transport ucx:tcp"})
    expect_usage_error(args);
  const RunResult loopback = run(kCclab + " bench allreduce --transport device-loopback -n 3");
  EXPECT_NE(loopback.output.find("--transport device-loopback runs on GPU memory: add --mem cuda"), std::string::npos)
      << loopback.output;
  const RunResult loopback_graph = run(kCclab + " bench allreduce --transport device-loopback --mem cuda -G 2");
  EXPECT_EQ(loopback_graph.status, 2) << loopback_graph.output;
  EXPECT_NE(loopback_graph.output.find("--cuda-graph: device-loopback's messages wait on the host"), std::string::npos)
      << loopback_graph.output;
  if (!cuda_unavailable_reason().empty()) {
    for (const std::string args : {"bench allreduce --mem cuda --impl nccl -n 2",
                                    "bench allgather --mem cuda --transport nccl --impl ring -n 3",
                                    "bench reduce --mem cuda --transport device-loopback --impl binomial -n 4",
                                    "bench allreduce --mem cuda", "bench allreduce --mem cuda --impl nccl -G 2",
                                    "bench p2p --mem cuda --impl nccl -n 2"}) {
      expect_usage_error(args);
      EXPECT_NE(run(kCclab + " " + args).output.find("--mem cuda: " + cuda_unavailable_reason()), std::string::npos)
          << args;
    }
  } else {
    const RunResult mpi = run(kCclab + " bench allreduce --mem cuda --impl mpi");
    EXPECT_NE(mpi.output.find("runs on host memory only"), std::string::npos) << mpi.output;
    const RunResult ucx = run(kCclab + " bench allreduce --mem cuda --impl ring");
    EXPECT_NE(ucx.output.find("needs --transport nccl or device-loopback"), std::string::npos) << ucx.output;
    const RunResult nccl_on_loopback =
        run(kCclab + " bench allreduce --mem cuda --transport device-loopback --impl nccl");
    EXPECT_NE(nccl_on_loopback.output.find("--impl nccl needs a GPU per rank"), std::string::npos)
        << nccl_on_loopback.output;
  }
}

// As nccl-tests: -f 1 is no factor, so the sizes step by -i (1M unless given).
TEST_F(CliTest, AStepFactorOfOneStepsByStepBytes) {
  const double mib = 1 << 20;
  const std::vector<std::pair<std::string, std::vector<double>>> sweeps = {
      {"", {mib, 2 * mib, 3 * mib}}, {" -i 512K", {mib, 1.5 * mib, 2 * mib, 2.5 * mib, 3 * mib}}};
  for (const auto& [step, sizes] : sweeps) {
    const RunResult result = run(kCclab + " bench allreduce -n 2 --impl ring -b 1M -e 3M -f 1" + step +
                                 " --iters 1 -w 0 --profile " + fitted_profile() + " --json " + json());
    ASSERT_EQ(result.status, 0) << result.output;
    std::vector<double> measured;
    for (const auto& record : measured_records(json())) measured.push_back(record["bytes"].get<double>());
    EXPECT_EQ(measured, sizes) << step;
    std::filesystem::remove(json());
  }
}

// compare as a CI gate: a run against itself passes, a run made 1.5x slower fails (exit 1) unless the
// threshold allows it, and unreadable inputs are refused with one line naming the file and line.
TEST_F(CliTest, CompareGatesOnRegressionsAndRefusesBadInput) {
  const RunResult bench = run(kCclab + " bench allreduce -n 2 --impl ring -b 64K -e 256K --iters 10 --profile " +
                              fitted_profile() + " --json " + json());
  ASSERT_EQ(bench.status, 0) << bench.output;
  const RunResult same = run(kCclab + " compare " + json() + " " + json());
  EXPECT_EQ(same.status, 0) << same.output;
  EXPECT_NE(same.output.find("3 rows: 0 regressed"), std::string::npos) << same.output;

  const std::string slower = (dir_ / "slower.jsonl").string();
  {
    std::ofstream out(slower);
    for (nlohmann::json record : read_results(json())) {
      if (record["kind"] == "collective") {
        record["busbw_gbps"] = record["busbw_gbps"].get<double>() / 1.5;
        for (auto& sample : record["samples_us"]) sample = sample.get<double>() * 1.5 + 100;
      }
      out << record.dump() << "\n";
    }
  }
  const RunResult regressed = run(kCclab + " compare " + json() + " " + slower);
  EXPECT_EQ(regressed.status, 1) << regressed.output;
  EXPECT_NE(regressed.output.find("3 rows: 3 regressed"), std::string::npos) << regressed.output;
  EXPECT_EQ(run(kCclab + " compare " + json() + " " + slower + " --threshold 50").status, 0);
  EXPECT_EQ(run(kCclab + " compare " + slower + " " + json()).status, 0);  // an improvement passes

  const std::string bad = (dir_ / "bad.jsonl").string();
  const std::string first_line = read_results(json()).front().dump();
  for (const auto& [content, reason] : std::vector<std::pair<std::string, std::string>>{
           {"", "bad.jsonl: no records"},
           {first_line + "\n{oops\n", "bad.jsonl:2: not JSON"},
           {"{\"a\": 1}\n", "bad.jsonl:1: not a cclab record"},
           {"{\"schema\": \"cclab.result/9\", \"kind\": \"collective\"}\n", "bad.jsonl:1: schema 'cclab.result/9'"}}) {
    std::ofstream(bad) << content;
    const std::string args = "compare " + json() + " " + bad;
    expect_usage_error(args);
    EXPECT_NE(run(kCclab + " " + args).output.find(reason), std::string::npos) << reason;
  }
  expect_usage_error("compare " + json() + " " + (dir_ / "missing.jsonl").string());
  expect_usage_error("compare " + json() + " " + json() + " --metric images_per_s");  // nothing in common
  expect_usage_error("compare " + json() + " " + json() + " --base-run nosuchrun");
}

// report renders a run for a CI page (Markdown), a spreadsheet (CSV, read back by Python's csv
// reader) and a test dashboard (JUnit, valid against the schema CI servers read), with the failed
// rows and gates failing; bad input leaves an existing report as it was.
TEST_F(CliTest, ReportWritesMarkdownCsvAndJunit) {
  const RunResult bench = run("CCLAB_FAULT_RANK=0 CCLAB_FAULT=wrong " + kCclab +
                              " bench allreduce -n 2 --impl ring,rabenseifner -b 8 -e 1K -f 8 --iters 2 -w 0 --check"
                              " --min-busbw 100000 --profile " + fitted_profile() + " --json " + json());
  ASSERT_EQ(bench.status, 1) << bench.output;

  const RunResult markdown = run(kCclab + " report " + json());
  ASSERT_EQ(markdown.status, 0) << markdown.output;
  EXPECT_NE(markdown.output.find("**Gates: FAILED**"), std::string::npos) << markdown.output;
  EXPECT_NE(markdown.output.find("| ring | ucx"), std::string::npos) << markdown.output;

  const std::string csv = (dir_ / "rows.csv").string();
  ASSERT_EQ(run(kCclab + " report " + json() + " -o " + csv).status, 0);
  const RunResult rows = run("python3 -c \"import csv,sys; r=list(csv.DictReader(open(sys.argv[1], newline=''))); "
                             "assert all(len(x) == len(r[0]) for x in r); "
                             "print(len(r), sorted(set(x['impl'] for x in r)), r[0]['wrong'])\" " + csv);
  EXPECT_EQ(rows.output, "6 ['rabenseifner', 'ring'] 1\n") << rows.output;

  const std::string xml = (dir_ / "report.xml").string();
  ASSERT_EQ(run(kCclab + " report " + json() + " -o " + xml).status, 0);
  const RunResult valid = run("xmllint --noout --schema " CCLAB_SOURCE_DIR "/tests/support/junit.xsd " + xml);
  EXPECT_EQ(valid.status, 0) << valid.output;
  std::ifstream junit(xml);
  const std::string text((std::istreambuf_iterator<char>(junit)), std::istreambuf_iterator<char>());
  // 6 checked rows and 3 gates (wrong elements; --min-busbw of each implementation), all failed.
  EXPECT_NE(text.find("tests=\"9\" failures=\"9\""), std::string::npos) << text;
  EXPECT_NE(text.find("message=\"1 wrong elements\""), std::string::npos) << text;

  std::ofstream(dir_ / "keep.md") << "earlier report\n";
  const std::string keep = (dir_ / "keep.md").string();
  expect_usage_error("report " + (dir_ / "missing.jsonl").string() + " -o " + keep);
  std::ifstream kept(keep);
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(kept)), std::istreambuf_iterator<char>()), "earlier report\n");
  expect_usage_error("report " + json() + " --format pdf");
  expect_usage_error("report " + json() + " -o " + (dir_ / "report.pdf").string());
  expect_usage_error("report " + json() + " -o /proc/cclab/report.md");
  expect_usage_error("report " + json() + " --run nosuchrun");
}

// The HTML report as a person opens it: headless Chromium with no network (an unreachable proxy)
// loads the page, every chart draws its marks, and the console stays free of errors. The page
// covers a collective sweep, a p2p pair matrix and a training scaling run.
TEST_F(CliTest, HtmlReportDrawsEveryChartOfflineInABrowser) {
  if (run("command -v chromium").status != 0)
    GTEST_SKIP() << "chromium is not installed (ci/install-deps.sh installs it)";
  const std::string results = json();
  ASSERT_EQ(run(kCclab + " bench allreduce -n 2 --impl ring,rabenseifner -b 8 -e 64K -f 8 --iters 3 -w 1 --profile " +
                fitted_profile() + " --json " + results).status, 0);
  ASSERT_EQ(run(kCclab + " bench p2p -n 3 --pairs all -e 1K --iters 5 --json " + results).status, 0);
  const RunResult train = run(kCclab + " train --model lenet5 --data synthetic:1x28x28 --steps 4 --batch 16 "
                              "--threads 1 --no-eval --scaling 1,2 --mode data,tensor --json " + results);
  ASSERT_EQ(train.status, 0) << train.output;
  std::vector<std::string> inputs;
  for (const auto& record : read_results(results))
    if (std::find(inputs.begin(), inputs.end(), record["run_id"]) == inputs.end()) inputs.push_back(record["run_id"]);
  ASSERT_EQ(inputs.size(), 3u);
  // One page per run, as each file's latest run is reported: write the runs to three files.
  std::string files;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::string file = (dir_ / ("run" + std::to_string(i) + ".jsonl")).string();
    std::ofstream out(file);
    for (const auto& record : read_results(results))
      if (record["run_id"] == inputs[i]) out << record.dump() << "\n";
    files += " " + file;
  }
  const std::string page = (dir_ / "report.html").string();
  const RunResult report = run(kCclab + " report" + files + " -o " + page);
  ASSERT_EQ(report.status, 0) << report.output;
  std::ifstream source_stream(page);
  const std::string source((std::istreambuf_iterator<char>(source_stream)), std::istreambuf_iterator<char>());
  EXPECT_EQ(source.find("<script src"), std::string::npos);
  EXPECT_EQ(source.find("<link"), std::string::npos);

  const std::string dom = (dir_ / "dom.html").string(), console = (dir_ / "console.log").string();
  run("timeout 120 chromium --headless --no-sandbox --disable-gpu --proxy-server=127.0.0.1:9 "
      "--virtual-time-budget=20000 --enable-logging=stderr --v=0 --dump-dom file://" + page + " > " + dom + " 2> " +
      console);
  std::ifstream dom_stream(dom), console_stream(console);
  const std::string drawn((std::istreambuf_iterator<char>(dom_stream)), std::istreambuf_iterator<char>());
  const std::string messages((std::istreambuf_iterator<char>(console_stream)), std::istreambuf_iterator<char>());
  EXPECT_NE(drawn.find("data-charts=\"drawn\""), std::string::npos) << messages;
  EXPECT_EQ(messages.find("CONSOLE"), std::string::npos) << messages;
  // Every chart: busbw, time and model error of the sweep; the pair matrix; speedup, step split
  // and bytes per phase of the training runs.
  const std::string marker = " id=\"chart";  // vega-embed adds its class to the chart's div
  size_t charts = 0;
  for (size_t at = drawn.find(marker); at != std::string::npos; at = drawn.find(marker, at + 1), ++charts) {
    const std::string chart = drawn.substr(at, drawn.find("</details>", at) - at);
    EXPECT_NE(chart.find("<svg"), std::string::npos) << "chart " << charts;
    EXPECT_NE(chart.find("class=\"mark-"), std::string::npos) << "chart " << charts;
  }
  EXPECT_EQ(charts, 7u);
}

// A suite runs its runs as one run (one id, one results file), prints one summary and exits with
// one status; with a baseline it gates as compare does; a bad suite file or a run refused as bad
// input ends it with one line naming the file and line. ci/suites/smoke.toml is read as shipped.
TEST_F(CliTest, SuitesRunAsOneRunWithOneVerdict) {
  const std::string suite = (dir_ / "quick.toml").string();
  auto write_suite = [&](const std::string& runs) { std::ofstream(suite) << "name = \"quick\"\n" << runs; };
  const std::string sweep = "bench allreduce -n 2 --impl ring -b 8 -e 4K -f 8 --iters 3 -w 1 --check --profile " +
                            fitted_profile();
  write_suite("[[run]]\ncommand = \"" + sweep + "\"\n[[run]]\nname = \"train\"\ncommand = \"train -n 2 --mode data "
              "--model lenet5 --data synthetic:1x28x28 --steps 3 --threads 1 --no-eval\"\n");
  RunResult result = run(kCclab + " suite run " + suite + " --json " + json());
  ASSERT_EQ(result.status, 0) << result.output;
  EXPECT_NE(result.output.find("# suite quick: passed"), std::string::npos) << result.output;
  const auto records = read_results(json());
  EXPECT_TRUE(std::all_of(records.begin(), records.end(),
                          [&](const auto& record) { return record["run_id"] == records.front()["run_id"]; }));
  EXPECT_TRUE(
      std::any_of(records.begin(), records.end(), [](const auto& record) { return record["kind"] == "train"; }));

  const std::string again = (dir_ / "again.jsonl").string();
  result = run(kCclab + " suite run " + suite + " --json " + again + " --baseline " + json() + " --threshold 1000");
  EXPECT_EQ(result.status, 0) << result.output;
  EXPECT_NE(result.output.find("0 regressed"), std::string::npos) << result.output;

  write_suite("[[run]]\ncommand = \"" + sweep + " --min-busbw 100000\"\n");
  result = run(kCclab + " suite run " + suite + " --json " + again);
  EXPECT_EQ(result.status, 1) << result.output;
  EXPECT_NE(result.output.find("FAILED (1)"), std::string::npos) << result.output;

  for (const auto& [content, reason] : std::vector<std::pair<std::string, std::string>>{
           {"[[run]]\ncommand = \"bench allreduce\"\ncolour = \"red\"\n", "quick.toml:4: unknown key 'colour'"},
           {"[[run]]\ncommand = \"bench allreduce --no-such-flag\"\n", "quick.toml:3: run 1: "},
           {"[[run]]\ncommand = \"info\"\n", "quick.toml:3: a suite runs bench and train"},
           {"[[run]]\ncommand = \"bench allreduce --json x\"\n", "quick.toml:3: drop --json"},
           {"[[run]\n", "quick.toml:2: "}}) {
    write_suite(content);
    const std::string args = "suite run " + suite + " --json " + again;
    expect_usage_error(args);
    EXPECT_NE(run(kCclab + " " + args).output.find(reason), std::string::npos) << reason;
  }
  write_suite("[[run]]\nname = \"x\"\n");
  expect_usage_error("suite run " + suite);
  for (const char* shipped : {"ci/suites/smoke.toml", "ci/suites/nightly.toml"})
    expect_usage_error(std::string("suite run " CCLAB_SOURCE_DIR "/") + shipped + " --baseline " +
                       (dir_ / "missing.jsonl").string());  // read and checked, then the baseline refused
}

// On a terminal (a pseudo-terminal made by script(1)) a sweep and a training run draw a status line
// in place; through a pipe they print none of it.
TEST_F(CliTest, ProgressShowsOnATerminalOnly) {
  const std::string sweep = kCclab + " bench allreduce -n 2 --impl ring -b 64K -e 256K --iters 3 -w 1 --profile " +
                            fitted_profile();
  const std::string train = kCclab + " train --model lenet5 --data synthetic:1x28x28 --steps 5 --threads 1 --no-eval";
  const RunResult on_terminal = run("script -qec '" + sweep + " && " + train + "' /dev/null");
  ASSERT_EQ(on_terminal.status, 0) << on_terminal.output;
  EXPECT_NE(on_terminal.output.find("\r\033[Kallreduce 65536 B, ring (1/3)"), std::string::npos) << on_terminal.output;
  EXPECT_NE(on_terminal.output.find("\r\033[Kstep 1/5  loss "), std::string::npos) << on_terminal.output;
  const RunResult piped = run(sweep + " && " + train);
  ASSERT_EQ(piped.status, 0) << piped.output;
  EXPECT_EQ(piped.output.find('\r'), std::string::npos) << piped.output;
  EXPECT_EQ(piped.output.find("\033["), std::string::npos) << piped.output;
}

// --trace: one extra call per (size, impl), step by step, every rank on its own track.
TEST_F(CliTest, TraceShowsEverySendReceiveAndReductionOfEveryRank) {
  const std::string trace = (dir_ / "trace.json").string();
  const RunResult result = run(kCclab + " bench allreduce -n 3 --impl ring,mpi -b 1K -e 64K -f 8 --iters 3 --profile " +
                               fitted_profile() + " --trace " + trace);
  ASSERT_EQ(result.status, 0) << result.output;
  EXPECT_NE(result.output.find("# trace: " + trace), std::string::npos) << result.output;
  const TraceFile file = read_trace(trace);
  ASSERT_EQ(file.problem, "");
  EXPECT_EQ(file.ranks, (std::set<int>{0, 1, 2}));
  for (int rank = 0; rank < 3; ++rank) {
    std::map<std::string, int> spans;
    for (const nlohmann::json& span : file.spans) {
      if (span["pid"] != rank) continue;
      const std::string category = span["cat"];
      spans[category == "collective" ? span["name"].get<std::string>() : category] += 1;
      // The ring sends to the next rank and receives from the previous one, whole chunks at these sizes.
      if (category != "send" && category != "recv") continue;
      EXPECT_EQ(span["args"]["peer"], (rank + (category == "send" ? 1 : 2)) % 3) << span.dump();
      EXPECT_GT(span["args"]["bytes"], 0) << span.dump();
    }
    // Three sizes: a ring allreduce on 3 ranks sends and receives 2(3-1) chunks and reduces 2 per call.
    EXPECT_EQ(spans["allreduce ring"], 3) << rank;
    EXPECT_EQ(spans["allreduce mpi"], 3) << rank;
    EXPECT_EQ(spans["send"], 12) << rank;
    EXPECT_EQ(spans["recv"], 12) << rank;
    EXPECT_EQ(spans["reduce"], 6) << rank;
  }
  // p2p: one more iteration per size, each message from its posting to its completion.
  const std::string p2p_trace = (dir_ / "p2p.json").string();
  const RunResult p2p =
      run(kCclab + " bench p2p -n 2 --test bw --window 4 -b 8 -e 1K -f 32 --iters 3 --trace " + p2p_trace);
  ASSERT_EQ(p2p.status, 0) << p2p.output;
  const TraceFile p2p_file = read_trace(p2p_trace);
  ASSERT_EQ(p2p_file.problem, "");
  for (int rank = 0; rank < 2; ++rank) {
    std::map<std::string, int> spans;
    for (const nlohmann::json& span : p2p_file.spans)
      if (span["pid"] == rank) spans[span["cat"].get<std::string>()] += 1;
    EXPECT_EQ(spans["iteration"], 2) << rank;  // 8 B and 256 B
    EXPECT_EQ(spans[rank == 0 ? "send" : "recv"], 2) << rank;
  }
  expect_usage_error("bench p2p --fit --trace " + p2p_trace);

  std::ofstream(dir_ / "a_file") << "not a directory";
  expect_usage_error("bench allreduce --trace " + (dir_ / "a_file" / "trace.json").string());
  expect_usage_error("bench allreduce --trace " + dir_.string());
}

TEST_F(CliTest, InfoAndVersion) {
  const RunResult info = run(kCclab + " info");
  ASSERT_EQ(info.status, 0) << info.output;
  EXPECT_NE(info.output.find("ucx"), std::string::npos);
  EXPECT_NE(info.output.find("ring"), std::string::npos);
  EXPECT_NE(info.output.find("mpi"), std::string::npos);
  EXPECT_NE(info.output.find("nccl        "), std::string::npos) << info.output;
  if (nccl_unavailable_reason().empty()) {
    EXPECT_NE(info.output.find("nccl                  vendor reference on GPU memory"), std::string::npos);
  }
  const RunResult version = run(kCclab + " --version");
  EXPECT_EQ(version.status, 0);
  EXPECT_EQ(version.output.rfind("cclab ", 0), 0u) << version.output;
}

}  // namespace
}  // namespace cclab
