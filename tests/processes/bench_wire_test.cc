// The wire (cclab/wire.h) as a user sees it: in the records, the table and the profile of bench
// runs on one machine, with nodes faked by --ranks-per-node, and --inter-transport forcing TCP
// between those nodes while shared memory stays inside them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "cclab/cost_model.h"
#include "cclab/error.h"
#include "cclab/wire.h"
#include "transports/mpi/mpi_wire.h"
#include "results.h"
#include "run_command.h"

namespace cclab {
namespace {

const std::string kCclab = CCLAB_BINARY;

class WireTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Open MPI refuses to run as root without both of these (CI machines run as root).
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    dir_ = std::filesystem::temp_directory_path() / ("cclab_wire_test_" + std::to_string(getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    // A profile of no known wire for every run, so none spends seconds calibrating a cost model
    // these tests do not look at.
    save_profile(profile(), CostProfile());
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(dir_); }
  static std::string profile() { return (dir_ / "profile.json").string(); }
  std::string json() const { return (dir_ / (test_name() + ".jsonl")).string(); }
  static std::string test_name() { return ::testing::UnitTest::GetInstance()->current_test_info()->name(); }

  // The collective or p2p records of a results file.
  std::vector<nlohmann::json> measured(const std::string& path) const {
    std::vector<nlohmann::json> records;
    for (nlohmann::json& record : read_results(path))
      if (record["kind"] == "collective" || record["kind"] == "p2p") records.push_back(std::move(record));
    return records;
  }

  static inline std::filesystem::path dir_;
};

// A short sweep: three sizes, two iterations each, every result checked.
const std::string kShortSweep = " -b 8 -e 64K -f 64 --iters 2 -w 1 --check";

TEST_F(WireTest, FittedProfileCarriesTheWire) {
  const std::string fitted = (dir_ / "fitted.json").string();
  const RunResult result = run_command(kCclab + " bench p2p -n 2 --fit --iters 2 -w 1 -e 64K --profile " + fitted);
  ASSERT_EQ(result.status, 0) << result.output;
  const Wire wire = wire_of_record(nlohmann::json::parse(std::ifstream(fitted)));
  EXPECT_TRUE(names_shared_memory(wire.intra)) << wire.intra;
  EXPECT_EQ(wire.inter, "");  // one node
  EXPECT_NE(result.output.find("fitted on wire " + wire.intra), std::string::npos) << result.output;
  EXPECT_EQ(load_profile(fitted).wire, wire);
}

// A profile keeps its wire through the file; one written before the field has none (unknown).
TEST_F(WireTest, ProfileFileKeepsTheWire) {
  CostProfile profile;
  profile.wire = {"sysv+cma", "tcp"};
  EXPECT_EQ(profile_from_json(profile_to_json(profile)).wire, profile.wire);
  nlohmann::json older = nlohmann::json::parse(profile_to_json(profile));
  older.erase("wire");
  EXPECT_TRUE(profile_from_json(older.dump()).wire.empty());
  older["wire"] = "tcp";
  EXPECT_THROW(profile_from_json(older.dump()), UsageError);
}

TEST_F(WireTest, OneNodeRecordsSharedMemory) {
  RunResult result = run_command(kCclab + " bench allreduce -n 2 --impl ring,mpi" + kShortSweep + " --profile " +
                                 profile() + " --json " + json());
  ASSERT_EQ(result.status, 0) << result.output;
  const std::vector<nlohmann::json> records = measured(json());
  ASSERT_EQ(records.size(), 6u);
  const Wire ucx = wire_of_record(records[0]);
  EXPECT_TRUE(names_shared_memory(ucx.intra)) << records[0].dump();
  for (const nlohmann::json& record : records) {
    ASSERT_TRUE(record.contains("wire")) << record.dump();
    EXPECT_TRUE(record["wire"]["inter"].is_null()) << record.dump();  // one node: no pair between nodes
    EXPECT_EQ(record["wrong"], 0) << record.dump();
    if (record["impl"] == "mpi")  // the launcher keeps Open MPI to self and vader on one host
      EXPECT_EQ(record["wire"]["intra"].get<std::string>().rfind("mpi:vader", 0), 0u) << record.dump();
    else
      EXPECT_EQ(wire_of_record(record), ucx) << record.dump();
  }
  // The table's transport column says it in short; the header in full.
  EXPECT_NE(result.output.find("ucx+shm:" + ucx.intra), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("# wire: intra-node " + ucx.intra), std::string::npos) << result.output;
  EXPECT_EQ(result.output.find("fitted on wire"), std::string::npos) << result.output;  // the profile's is unknown
  EXPECT_NE(result.output.find(" mpi:vader"), std::string::npos) << result.output;

  std::filesystem::remove(json());
  result = run_command(kCclab + " bench p2p -n 2 -b 8 -e 8 --iters 2 --json " + json());
  ASSERT_EQ(result.status, 0) << result.output;
  for (const nlohmann::json& record : measured(json())) EXPECT_EQ(wire_of_record(record), ucx) << record.dump();
}

TEST_F(WireTest, InterTransportTcpCarriesTheTrafficBetweenFakedNodesOnly) {
  const std::string job = " bench allreduce -n 4 --ranks-per-node 2 --impl ring,hier_rab" + kShortSweep +
                          " --profile " + profile() + " --json ";
  // UCX's own choice joins the faked nodes through shared memory, and says so.
  RunResult result = run_command(kCclab + job + json());
  ASSERT_EQ(result.status, 0) << result.output;
  EXPECT_NE(result.output.find("reach each other through shared memory"), std::string::npos) << result.output;
  for (const nlohmann::json& record : measured(json()))
    EXPECT_TRUE(names_shared_memory(wire_of_record(record).inter)) << record.dump();

  std::filesystem::remove(json());
  result = run_command(kCclab + job + json() + " --inter-transport ucx:tcp");
  ASSERT_EQ(result.status, 0) << result.output;
  EXPECT_EQ(result.output.find("reach each other through shared memory"), std::string::npos) << result.output;
  const std::vector<nlohmann::json> records = measured(json());
  ASSERT_EQ(records.size(), 6u);
  for (const nlohmann::json& record : records) {
    EXPECT_EQ(record["nodes"], 2);
    EXPECT_EQ(record["transport"], "ucx+ucx:tcp");
    EXPECT_EQ(record["wrong"], 0) << record.dump();
    const Wire wire = wire_of_record(record);
    EXPECT_TRUE(names_shared_memory(wire.intra)) << record.dump();  // inside a node: untouched
    EXPECT_EQ(wire.inter, "tcp") << record.dump();
  }
  EXPECT_NE(result.output.find("ucx:" + wire_of_record(records[0]).intra + "/tcp"), std::string::npos) << result.output;
}

// Open MPI's wire follows from the components it has open: vader within a host, the one network
// BTL open between hosts, and no claim where the hardware decides (UCX's PML, several BTLs).
TEST(OpenMpiWire, FollowsTheComponentsOpenMpiHasOpen) {
  const OpenMpiSelection debian{false, {"self", "vader", "tcp"}, "cma"};
  EXPECT_EQ(open_mpi_wire(debian, true), "mpi:vader+cma");
  EXPECT_EQ(open_mpi_wire(debian, false), "mpi:tcp");
  EXPECT_TRUE(names_shared_memory(open_mpi_wire(debian, true)));
  EXPECT_FALSE(names_shared_memory(open_mpi_wire(debian, false)));
  EXPECT_EQ(open_mpi_wire({false, {"self", "tcp"}, "cma"}, true), "mpi:tcp");  // vader left out
  EXPECT_EQ(open_mpi_wire({false, {"self", "vader"}, "none"}, true), "mpi:vader");
  EXPECT_EQ(open_mpi_wire({true, {"self", "vader", "tcp"}, "cma"}, false), "mpi");  // UCX's PML may take over
  EXPECT_EQ(open_mpi_wire({false, {"self", "vader", "tcp", "openib"}, "cma"}, false), "mpi");
}

// Virtual nodes on one host: Open MPI still joins them through shared memory, and its rows say so.
TEST_F(WireTest, MpiBetweenVirtualNodesOfOneHostIsSharedMemory) {
  const RunResult result = run_command(kCclab + " bench allreduce -n 2 --ranks-per-node 1 --impl mpi" + kShortSweep +
                                       " --profile " + profile() + " --json " + json());
  ASSERT_EQ(result.status, 0) << result.output;
  for (const nlohmann::json& record : measured(json())) {
    EXPECT_TRUE(record["wire"]["intra"].is_null()) << record.dump();
    EXPECT_EQ(record["wire"]["inter"].get<std::string>().rfind("mpi:vader", 0), 0u) << record.dump();
  }
}

TEST_F(WireTest, BadInterTransportIsOneLineAndStatusTwo) {
  for (const char* value : {"ucx:bogus", "ucx:", "tcp", "ucx:sm", "ucx:tcp,", "UCX:tcp"}) {
    const RunResult result = run_command(kCclab + " bench allreduce -n 2 --inter-transport '" + value + "'");
    EXPECT_EQ(result.status, 2) << value << "\n" << result.output;
    EXPECT_EQ(std::count(result.output.begin(), result.output.end(), '\n'), 1) << value << "\n" << result.output;
    EXPECT_NE(result.output.find("--inter-transport"), std::string::npos) << result.output;
  }
}

TEST_F(WireTest, ProfileFittedOnAnotherWireWarns) {
  CostProfile other;
  other.wire.intra = "tcp";
  const std::string path = (dir_ / "tcp-profile.json").string();
  save_profile(path, other);
  const RunResult result =
      run_command(kCclab + " bench allreduce -n 2 --impl ring -b 8 -e 8 --iters 1 -w 0 --profile " + path);
  ASSERT_EQ(result.status, 0) << result.output;
  const size_t warning = result.output.find("was fitted on wire tcp");
  EXPECT_NE(warning, std::string::npos) << result.output;
  EXPECT_EQ(result.output.find("was fitted on wire", warning + 1), std::string::npos) << "warned twice";
}

}  // namespace
}  // namespace cclab
