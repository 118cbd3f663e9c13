// Bootstrap tests: the TCP rendezvous store and its Bootstrap (ranks as threads), launcher
// detection and placement (environment only), and the launchers end to end (ranks as processes).
//
// The end-to-end tests start this test binary itself as the ranks: launch_local execs
// /proc/self/exe, so a rank is this program with CCLAB_BOOTSTRAP_TEST_ROLE in its environment.
// A static initializer below notices the role and plays that rank before GoogleTest's main runs,
// then exits; without the variable it does nothing.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bootstrap/job_token.h"
#include "bootstrap/store_address.h"
#include "bootstrap/tcp_store_bootstrap.h"
#include "bootstrap/tcp_store_client.h"
#include "bootstrap/tcp_store_protocol.h"
#include "bootstrap/tcp_store_server.h"
#include "bootstrap/unique_fd.h"
#include "cclab/error.h"
#include "cclab/launch.h"

extern char** environ;

namespace cclab {
namespace {

// ---------------------------------------------------------------------------------------------
// Ranks played by this binary (see the file comment).

constexpr char kRoleVariable[] = "CCLAB_BOOTSTRAP_TEST_ROLE";
constexpr char kOutputVariable[] = "CCLAB_BOOTSTRAP_TEST_OUT";

/// Appends one line to the file the test named; O_APPEND keeps the ranks' short lines whole.
void report_line(const std::string& line) {
  const char* path = std::getenv(kOutputVariable);
  if (path == nullptr) return;
  std::FILE* file = std::fopen(path, "a");
  if (file == nullptr) return;
  std::fprintf(file, "%s\n", line.c_str());
  std::fclose(file);
}

int play_rank(const std::string& role) {
  const int rank = std::atoi(std::getenv("CCLAB_RANK")             ? std::getenv("CCLAB_RANK")
                             : std::getenv("OMPI_COMM_WORLD_RANK") ? std::getenv("OMPI_COMM_WORLD_RANK")
                                                                   : "0");
  try {
    if (role == "hang-before-join" && rank == 1) {
      std::this_thread::sleep_for(std::chrono::seconds(30));  // the supervisor stops us long before
      return 0;
    }
    const std::string fingerprint = (role == "mismatch" && rank == 1) ? "other arguments" : "same arguments";
    const double timeout_s = role == "hang-before-join" ? 1 : 20;
    auto bootstrap = join_job(fingerprint, timeout_s);
    if (role == "fail" && bootstrap->rank() == 1) return 3;
    if (role == "crash" && bootstrap->rank() == 1) raise(SIGKILL);
    if (role == "fail" || role == "crash") {
      bootstrap->barrier();  // rank 1 never comes: we wait here until the supervisor stops us
      return 0;
    }
    // "allgather", "mpi": a few rounds, each checked against what every rank must have sent.
    for (int round = 0; round < 5; ++round) {
      const auto all = bootstrap->allgather(std::to_string(round) + ":" + std::to_string(bootstrap->rank()));
      for (int r = 0; r < bootstrap->size(); ++r)
        if (all[r] != std::to_string(round) + ":" + std::to_string(r)) return 10;
    }
    const Placement placement = this_rank_placement();
    report_line("rank=" + std::to_string(bootstrap->rank()) + " size=" + std::to_string(bootstrap->size()) +
                " launcher=" + bootstrap->launcher() + " binding=" + placement.binding +
                " threads=" + std::to_string(placement.threads) +
                " oversubscribed=" + std::to_string(placement.oversubscribed));
    return 0;
  } catch (const UsageError& error) {
    std::fprintf(stderr, "cclab: %s\n", error.what());
    return 2;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "cclab: rank %d: %s\n", rank, error.what());
    return 1;
  }
}

[[maybe_unused]] const bool kPlayedARank = [] {
  const char* role = std::getenv(kRoleVariable);
  if (role == nullptr) return false;
  const int status = play_rank(role);
  std::fflush(nullptr);
  std::_Exit(status);  // a rank must not go on to run the test suite
}();

// ---------------------------------------------------------------------------------------------
// Helpers

/// Sets (or, with nullopt, unsets) environment variables for one test and restores them after.
class ScopedEnv {
 public:
  ScopedEnv(std::initializer_list<std::pair<const char*, std::optional<std::string>>> values) {
    for (const auto& [name, value] : values) {
      const char* old = std::getenv(name);
      saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
      if (value) setenv(name, value->c_str(), 1);
      else unsetenv(name);
    }
  }
  ~ScopedEnv() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      if (it->second) setenv(it->first.c_str(), it->second->c_str(), 1);
      else unsetenv(it->first.c_str());
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

/// Every variable detect_launch() looks at, unset: the tests' starting point.
ScopedEnv clean_launch_env() {
  return ScopedEnv{{"CCLAB_LOCAL_LAUNCH", std::nullopt}, {"CCLAB_RANK", std::nullopt},
                   {"CCLAB_WORLD_SIZE", std::nullopt},   {"CCLAB_STORE", std::nullopt},
                   {"CCLAB_TOKEN", std::nullopt},        {"CCLAB_STORE_BIND_ADDR", std::nullopt},
                   {"OMPI_COMM_WORLD_SIZE", std::nullopt}, {"SLURM_PROCID", std::nullopt},
                   {"SLURM_NTASKS", std::nullopt},       {"CCLAB_LOCAL_SIZE", std::nullopt}};
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// A port nothing listens on (bound then released; nobody else grabs it within a test).
uint16_t unused_port() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  socklen_t length = sizeof address;
  getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &length);
  return ntohs(address.sin_port);
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream file(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(file, line);) lines.push_back(line);
  std::sort(lines.begin(), lines.end());
  return lines;
}

std::string temp_path(const std::string& name) {
  std::string path = ::testing::TempDir() + "cclab_bootstrap_" + std::to_string(::getpid()) + "_" + name;
  std::remove(path.c_str());
  return path;
}

// ---------------------------------------------------------------------------------------------
// Store

TEST(JobToken, Is128RandomBitsInHex) {
  const std::string a = make_job_token(), b = make_job_token();
  EXPECT_EQ(a.size(), 32u);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(a, b);
}

TEST(StoreAddress, ParsesHostPortAndRejectsGarbage) {
  const StoreAddress v4 = parse_store_address("127.0.0.1:29500");
  EXPECT_EQ(v4.host, "127.0.0.1");
  EXPECT_EQ(v4.port, 29500);
  const StoreAddress v6 = parse_store_address("[::1]:80");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.port, 80);
  EXPECT_EQ(v6.to_string(), "[::1]:80");
  EXPECT_EQ(parse_store_address("node-7:1").to_string(), "node-7:1");
  for (const char* bad : {"", "host", ":80", "host:", "host:http", "host:70000", "::1:80", "[::1]80"})
    EXPECT_THROW(parse_store_address(bad, "CCLAB_STORE"), UsageError) << bad;
  try {
    parse_store_address("nohost", "CCLAB_STORE");
  } catch (const UsageError& error) {
    EXPECT_EQ(std::string(error.what()), "CCLAB_STORE must be host:port (or [ipv6]:port), got 'nohost'");
  }
}

TEST(TcpStore, SetThenGet) {
  const std::string token = make_job_token();
  TcpStoreServer server(token);
  ASSERT_NE(server.port(), 0);
  TcpStoreClient writer(server.local_address(), token, Deadline::after(5));
  TcpStoreClient reader(server.local_address(), token, Deadline::after(5));
  writer.set("alpha", "one");
  writer.set("binary", std::string("\0\xff\n", 3));
  writer.set("empty", "");
  EXPECT_EQ(reader.get("alpha", Deadline::after(5)), "one");
  EXPECT_EQ(reader.get("binary", Deadline::after(5)), std::string("\0\xff\n", 3));
  EXPECT_EQ(reader.get("empty", Deadline::after(5)), "");
  writer.set("alpha", "two");  // overwriting is allowed
  EXPECT_EQ(reader.get("alpha", Deadline::after(5)), "two");
  const std::string large(3 << 20, 'x');  // larger than any socket buffer: exercises partial writes
  writer.set("large", large);
  EXPECT_EQ(reader.get("large", Deadline::after(5)), large);
}

TEST(TcpStore, GetBlocksUntilTheKeyIsSet) {
  const std::string token = make_job_token();
  TcpStoreServer server(token);
  TcpStoreClient reader(server.local_address(), token, Deadline::after(5));
  const auto start = Clock::now();
  std::thread writer([&] {
    TcpStoreClient client(server.local_address(), token, Deadline::after(5));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    client.set("late", "here");
  });
  EXPECT_EQ(reader.get("late", Deadline::after(10)), "here");
  EXPECT_GE(seconds_since(start), 0.15);
  writer.join();
}

TEST(TcpStore, GetTimesOutNamingTheKey) {
  const std::string token = make_job_token();
  TcpStoreServer server(token);
  TcpStoreClient client(server.local_address(), token, Deadline::after(5));
  const auto start = Clock::now();
  try {
    client.get("never", Deadline::after(0.3));
    FAIL() << "get returned";
  } catch (const TimeoutError& error) {
    EXPECT_NE(std::string(error.what()).find("'never'"), std::string::npos) << error.what();
  }
  EXPECT_GE(seconds_since(start), 0.25);
  EXPECT_LT(seconds_since(start), 3.0);
}

TEST(TcpStore, WaitAllReportsWhichKeysAreMissing) {
  const std::string token = make_job_token();
  TcpStoreServer server(token);
  TcpStoreClient client(server.local_address(), token, Deadline::after(5));
  client.set("b", "2");
  const auto result = client.wait_all({"a", "b", "c"}, Deadline::after(0.2));
  EXPECT_TRUE(result.values.empty());
  EXPECT_EQ(result.missing, (std::vector<size_t>{0, 2}));
  client.set("a", "1");
  client.set("c", "3");
  EXPECT_EQ(client.wait_all({"a", "b", "c"}, Deadline::after(1)).values, (std::vector<std::string>{"1", "2", "3"}));
  client.erase("b");
  EXPECT_EQ(client.wait_all({"b"}, Deadline::after(0.1)).missing, (std::vector<size_t>{0}));

  // A key deleted while a wait that already saw it is pending is waited for again.
  std::thread other([&] {
    TcpStoreClient writer(server.local_address(), token, Deadline::after(5));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    writer.erase("a");
    writer.set("b", "two");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    writer.set("a", "one");
  });
  EXPECT_EQ(client.wait_all({"a", "b"}, Deadline::after(5)).values, (std::vector<std::string>{"one", "two"}));
  other.join();
}

TEST(TcpStore, WrongTokenIsRejected) {
  const std::string token = make_job_token();
  TcpStoreServer server(token);
  try {
    TcpStoreClient intruder(server.local_address(), make_job_token(), Deadline::after(5));
    FAIL() << "a wrong token was accepted";
  } catch (const TimeoutError& error) {
    FAIL() << "expected a refusal, got a timeout: " << error.what();
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("wrong job token"), std::string::npos) << error.what();
  }
  EXPECT_THROW(TcpStoreClient(server.local_address(), "", Deadline::after(5)), Error);
  // The server goes on serving the job.
  TcpStoreClient member(server.local_address(), token, Deadline::after(5));
  member.set("k", "v");
  EXPECT_EQ(member.get("k", Deadline::after(1)), "v");
}

/// A raw connection that speaks no protocol, to check how the server treats misbehaving peers.
UniqueFd raw_connection(uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  timeval limit{5, 0};  // so a broken server fails the test instead of hanging it
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  return fd;
}

TEST(TcpStore, GarbageFromAnUnauthenticatedPeerClosesOnlyThatConnection) {
  const std::string token = make_job_token();
  TcpStoreServer server(token);
  TcpStoreClient member(server.local_address(), token, Deadline::after(5));
  UniqueFd idle = raw_connection(server.port());  // connects and says nothing: must not block anyone
  UniqueFd garbage = raw_connection(server.port());
  const unsigned char huge_frame[4] = {0xff, 0xff, 0xff, 0xff};
  ASSERT_EQ(::send(garbage.get(), huge_frame, 4, MSG_NOSIGNAL), 4);
  char byte;
  EXPECT_EQ(::recv(garbage.get(), &byte, 1, 0), 0) << "the server should hang up on a 4 GiB frame";
  member.set("still", "works");
  EXPECT_EQ(member.get("still", Deadline::after(1)), "works");
}

// Open descriptors of this process (the store's server runs in it as a thread).
size_t open_descriptors() {
  size_t count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++count;
  return count;
}

size_t resident_bytes() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  return 0;
}

// 300 strangers that connect and say nothing hold at most a few dozen of the store's descriptors,
// and a rank that arrives after them joins at once.
TEST(TcpStore, IdleStrangersCannotStarveARank) {
  const std::string token = make_job_token();
  TcpStoreServer server(token);
  const size_t before = open_descriptors();
  std::vector<UniqueFd> strangers;
  for (int i = 0; i < 300; ++i) strangers.push_back(raw_connection(server.port()));
  const auto start = std::chrono::steady_clock::now();
  TcpStoreClient member(server.local_address(), token, Deadline::after(5));
  member.set("k", "v");
  EXPECT_EQ(member.get("k", Deadline::after(2)), "v");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the server has accepted them all by now
  EXPECT_LT(open_descriptors(), before + 300 + 40) << "the server holds more than a bounded number of strangers";
}

// A member that pipelines requests without reading the replies gets one reply at a time: the
// others wait in its socket, the server's memory does not grow with them, and the store serves
// the other ranks meanwhile.
TEST(TcpStore, PipelinedRequestsWaitForTheirReplies) {
  const std::string token = make_job_token();
  TcpStoreServer server(token);
  UniqueFd greedy = raw_connection(server.port());
  const std::string big(size_t{1} << 20, 'x');
  std::string requests = encode_frame({"HELLO", token}) + encode_frame({"SET", "big", big});
  for (int i = 0; i < 200; ++i) requests += encode_frame({"WAIT", "0", "big"});
  const size_t rss_before = resident_bytes();
  std::thread sender([&] {  // blocks once the socket is full, which is the point
    for (size_t sent = 0; sent < requests.size();) {
      const ssize_t n = ::send(greedy.get(), requests.data() + sent, requests.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += size_t(n);
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  TcpStoreClient member(server.local_address(), token, Deadline::after(5));
  member.set("k", "v");
  EXPECT_EQ(member.get("k", Deadline::after(2)), "v");
  EXPECT_LT(resident_bytes(), rss_before + (size_t{64} << 20)) << "200 replies of 1 MiB were queued";
  ::shutdown(greedy.get(), SHUT_RDWR);
  sender.join();
}

TEST(TcpStore, LostServerIsAnErrorNotAHang) {
  const std::string token = make_job_token();
  auto server = std::make_unique<TcpStoreServer>(token);
  TcpStoreClient client(server->local_address(), token, Deadline::after(5));
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    server.reset();
  });
  const auto start = Clock::now();
  EXPECT_THROW(client.get("never", Deadline::after(30)), Error);
  EXPECT_LT(seconds_since(start), 5.0);
  stopper.join();
  // The connection is unusable now, and says so instead of reading a stale reply.
  EXPECT_THROW(client.set("k", "v"), Error);
}

TEST(TcpStore, ConnectGivesUpAtTheDeadline) {
  const uint16_t port = unused_port();
  const auto start = Clock::now();
  try {
    TcpStoreClient client({"127.0.0.1", port}, make_job_token(), Deadline::after(0.4));
    FAIL() << "connected to nothing";
  } catch (const TimeoutError& error) {
    EXPECT_NE(std::string(error.what()).find("127.0.0.1:" + std::to_string(port)), std::string::npos) << error.what();
  }
  EXPECT_GE(seconds_since(start), 0.35);
  EXPECT_LT(seconds_since(start), 3.0);
}

TEST(TcpStore, ClientRetriesUntilTheServerComesUp) {
  const uint16_t port = unused_port();
  const std::string token = make_job_token();
  std::unique_ptr<TcpStoreServer> server;
  std::thread starter([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    server = std::make_unique<TcpStoreServer>(token, "127.0.0.1", port);
  });
  TcpStoreClient client({"127.0.0.1", port}, token, Deadline::after(10));
  starter.join();
  client.set("up", "yes");
  EXPECT_EQ(client.get("up", Deadline::after(1)), "yes");
}

// ---------------------------------------------------------------------------------------------
// TcpStoreBootstrap with ranks as threads

std::vector<std::unique_ptr<TcpStoreBootstrap>> thread_job(const TcpStoreServer& server, const std::string& token,
                                                           int size, double timeout_s) {
  std::vector<std::unique_ptr<TcpStoreBootstrap>> ranks;
  for (int rank = 0; rank < size; ++rank)
    ranks.push_back(std::make_unique<TcpStoreBootstrap>(
        std::make_unique<TcpStoreClient>(server.local_address(), token, Deadline::after(5)), rank, size, "test",
        timeout_s));
  return ranks;
}

TEST(TcpStoreBootstrap, AllgatherOverManyRoundsWithUnevenArrivals) {
  for (int size : {3, 4}) {
    const std::string token = make_job_token();
    TcpStoreServer server(token);
    auto ranks = thread_job(server, token, size, 10);
    constexpr int kRounds = 12;
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int rank = 0; rank < size; ++rank) {
      threads.emplace_back([&, rank] {
        std::mt19937 random(rank);
        for (int round = 0; round < kRounds; ++round) {
          // Stagger arrivals so fast ranks run ahead into the next round while slow ones still read.
          std::this_thread::sleep_for(std::chrono::microseconds(random() % 3000));
          // Sizes vary by rank and round, including empty contributions.
          const std::string mine = std::string(static_cast<size_t>((rank * 7 + round * 13) % 5) * 1000,
                                               static_cast<char>('a' + rank)) + std::to_string(round);
          const auto all = ranks[rank]->allgather(mine);
          for (int r = 0; r < size; ++r) {
            const std::string expected =
                std::string(static_cast<size_t>((r * 7 + round * 13) % 5) * 1000, static_cast<char>('a' + r)) +
                std::to_string(round);
            if (all.size() != static_cast<size_t>(size) || all[r] != expected) ++wrong;
          }
        }
        ranks[rank]->barrier();
      });
    }
    for (auto& thread : threads) thread.join();
    EXPECT_EQ(wrong.load(), 0) << size << " ranks";
  }
}

TEST(TcpStoreBootstrap, TimeoutNamesTheRanksThatNeverArrived) {
  const std::string token = make_job_token();
  TcpStoreServer server(token);
  auto ranks = thread_job(server, token, 4, 0.5);
  std::vector<std::string> messages(2);
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  for (int rank = 0; rank < 2; ++rank) {
    threads.emplace_back([&, rank] {
      try {
        ranks[rank]->allgather("x");
      } catch (const TimeoutError& error) {
        messages[rank] = error.what();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_LT(seconds_since(start), 3.0);
  for (const auto& message : messages) EXPECT_EQ(message, "rendezvous timed out after 0.5 s: ranks 2, 3 never arrived");
}

TEST(TcpStoreBootstrap, TimeoutInALaterRoundNamesTheLateRank) {
  const std::string token = make_job_token();
  TcpStoreServer server(token);
  auto ranks = thread_job(server, token, 8, 0.3);
  std::vector<std::string> messages(8);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < 8; ++rank) {
    threads.emplace_back([&, rank] {
      ranks[rank]->allgather("first");
      if (rank == 5) return;  // rank 5 skips the second round
      try {
        ranks[rank]->allgather("second");
      } catch (const TimeoutError& error) {
        messages[rank] = error.what();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(messages[0], "bootstrap allgather (round 1) timed out after 0.3 s: rank 5 did not arrive");

  // Many missing ranks collapse into ranges.
  TcpStoreServer other(token);
  auto lonely = thread_job(other, token, 8, 0.2);
  try {
    lonely[0]->allgather("alone");
    FAIL();
  } catch (const TimeoutError& error) {
    EXPECT_EQ(std::string(error.what()), "rendezvous timed out after 0.2 s: ranks 1-7 never arrived");
  }
}

// ---------------------------------------------------------------------------------------------
// Launcher detection and placement (environment only)

TEST(DetectLaunch, ReadsTheEnvironment) {
  const auto clean = clean_launch_env();
  EXPECT_EQ(detect_launch(), LaunchKind::none);
  EXPECT_EQ(launcher_world_size(), 0);
  {
    ScopedEnv env{{"CCLAB_LOCAL_LAUNCH", "1"}, {"CCLAB_RANK", "1"}, {"CCLAB_WORLD_SIZE", "3"},
                  {"CCLAB_STORE", "127.0.0.1:1234"}, {"CCLAB_TOKEN", "t"}};
    EXPECT_EQ(detect_launch(), LaunchKind::local);
    EXPECT_EQ(launcher_world_size(), 3);
  }
  {
    ScopedEnv env{{"OMPI_COMM_WORLD_SIZE", "5"}};
    EXPECT_EQ(detect_launch(), LaunchKind::mpi);
    EXPECT_EQ(launcher_world_size(), 5);
  }
  {
    ScopedEnv env{{"CCLAB_RANK", "0"}, {"CCLAB_WORLD_SIZE", "2"}, {"CCLAB_STORE", "node0:29500"}};
    EXPECT_EQ(detect_launch(), LaunchKind::env);
    EXPECT_EQ(launcher_world_size(), 2);
  }
  {
    ScopedEnv env{{"SLURM_PROCID", "3"}, {"SLURM_NTASKS", "8"}};
    EXPECT_EQ(detect_launch(), LaunchKind::none) << "a Slurm batch script is not a rank without CCLAB_STORE";
    ScopedEnv store{{"CCLAB_STORE", "node0:29500"}};
    EXPECT_EQ(detect_launch(), LaunchKind::env);
    EXPECT_EQ(launcher_world_size(), 8);
  }
  {
    ScopedEnv env{{"CCLAB_RANK", "0"}, {"CCLAB_WORLD_SIZE", "2"}};
    try {
      detect_launch();
      FAIL();
    } catch (const UsageError& error) {
      EXPECT_NE(std::string(error.what()).find("missing CCLAB_STORE"), std::string::npos) << error.what();
    }
  }
}

TEST(JoinJob, EnvLaunchOfOneRankHostsItsOwnStore) {
  const auto clean = clean_launch_env();
  ScopedEnv env{{"CCLAB_RANK", "0"}, {"CCLAB_WORLD_SIZE", "1"}, {"CCLAB_TOKEN", make_job_token()},
                {"CCLAB_STORE", "127.0.0.1:" + std::to_string(unused_port())}};
  auto bootstrap = join_job("fingerprint", 5);
  EXPECT_EQ(bootstrap->rank(), 0);
  EXPECT_EQ(bootstrap->size(), 1);
  EXPECT_EQ(bootstrap->launcher(), "env");
  EXPECT_EQ(bootstrap->allgather("solo"), std::vector<std::string>{"solo"});
}

// An env launch needs a token of at least 16 characters, on loopback too: without one any local
// process could join the rendezvous or set its keys.
TEST(JoinJob, EnvLaunchNeedsAStrongToken) {
  const auto clean = clean_launch_env();
  ScopedEnv env{{"CCLAB_RANK", "0"}, {"CCLAB_WORLD_SIZE", "1"}, {"CCLAB_STORE_BIND_ADDR", "0.0.0.0"},
                {"CCLAB_STORE", "127.0.0.1:" + std::to_string(unused_port())}};
  const auto refusal = [] {
    try {
      join_job("fingerprint", 5);
    } catch (const UsageError& error) {
      return std::string(error.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(refusal().find("CCLAB_TOKEN is not set"), std::string::npos) << refusal();
  {
    ScopedEnv weak{{"CCLAB_TOKEN", "x"}};
    EXPECT_NE(refusal().find("CCLAB_TOKEN has 1 characters; a token needs at least 16"), std::string::npos)
        << refusal();
  }
  ScopedEnv token{{"CCLAB_TOKEN", make_job_token()}};
  EXPECT_EQ(join_job("fingerprint", 5)->size(), 1);
}

TEST(JoinJob, BadEnvironmentIsAUsageError) {
  const auto clean = clean_launch_env();
  {
    ScopedEnv env{{"CCLAB_RANK", "2"}, {"CCLAB_WORLD_SIZE", "2"}, {"CCLAB_STORE", "127.0.0.1:1"}};
    EXPECT_THROW(join_job("f", 1), UsageError);
  }
  {
    ScopedEnv env{{"CCLAB_RANK", "zero"}, {"CCLAB_WORLD_SIZE", "2"}, {"CCLAB_STORE", "127.0.0.1:1"}};
    EXPECT_THROW(join_job("f", 1), UsageError);
  }
  {
    ScopedEnv env{{"CCLAB_RANK", "0"}, {"CCLAB_WORLD_SIZE", "2"}, {"CCLAB_STORE", "127.0.0.1"}};
    EXPECT_THROW(join_job("f", 1), UsageError);
  }
}

TEST(Placement, LocalLaunchReportsWhatTheSupervisorDecided) {
  const auto clean = clean_launch_env();
  ScopedEnv env{{"CCLAB_LOCAL_LAUNCH", "1"}, {"CCLAB_BINDING", "cores 2-3"}, {"CCLAB_THREADS", "2"},
                {"CCLAB_OVERSUBSCRIBED", "0"}};
  Placement placement = this_rank_placement();
  EXPECT_EQ(placement.binding, "cores 2-3");
  EXPECT_EQ(placement.threads, 2);
  EXPECT_FALSE(placement.oversubscribed);
  ScopedEnv over{{"CCLAB_BINDING", "none"}, {"CCLAB_THREADS", "1"}, {"CCLAB_OVERSUBSCRIBED", "1"}};
  placement = this_rank_placement();
  EXPECT_EQ(placement.binding, "none");
  EXPECT_EQ(placement.threads, 1);
  EXPECT_TRUE(placement.oversubscribed);
}

TEST(Placement, UnderMpirunComparesLocalRanksWithCores) {
  const auto clean = clean_launch_env();
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  ScopedEnv env{{"OMPI_COMM_WORLD_SIZE", "64"}, {"OMPI_COMM_WORLD_LOCAL_SIZE", std::to_string(cores + 1)}};
  EXPECT_TRUE(this_rank_placement().oversubscribed);
  ScopedEnv fits{{"OMPI_COMM_WORLD_LOCAL_SIZE", "1"}};
  const Placement placement = this_rank_placement();
  EXPECT_FALSE(placement.oversubscribed);
  EXPECT_GE(placement.threads, 1);
  // Hosts that share one machine's cores: the user's count of the ranks sharing them wins.
  ScopedEnv sharing{{"CCLAB_LOCAL_SIZE", std::to_string(cores + 1)}};
  EXPECT_TRUE(this_rank_placement().oversubscribed);
}

// ---------------------------------------------------------------------------------------------
// Launchers end to end: this binary plays the ranks.

struct LaunchResult {
  int status;
  std::string errors;  // the supervisor's and the ranks' stderr
  double seconds;
};

LaunchResult launch_with_role(const std::string& role, const LocalLaunchOptions& options,
                              const std::string& output = "") {
  const auto clean = clean_launch_env();
  ScopedEnv env{{kRoleVariable, role}, {kOutputVariable, output.empty() ? std::nullopt : std::optional(output)}};
  ::testing::internal::CaptureStderr();  // redirects fd 2, which the ranks inherit
  const auto start = Clock::now();
  int status = -1;
  try {
    status = launch_local({"bootstrap_test"}, options);
  } catch (...) {
    ::testing::internal::GetCapturedStderr();
    throw;
  }
  const double seconds = seconds_since(start);
  return {status, ::testing::internal::GetCapturedStderr(), seconds};
}

TEST(LaunchLocal, RanksRendezvousAndRecordTheirPlacement) {
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  const std::string output = temp_path("placement");
  LocalLaunchOptions options;
  options.ranks = 2;
  const auto result = launch_with_role("allgather", options, output);
  EXPECT_EQ(result.status, 0) << result.errors;
  const auto lines = read_lines(output);
  ASSERT_EQ(lines.size(), 2u) << result.errors;
  if (cores >= 2) {
    // cores/2 each, in contiguous blocks (this assumes the test runs with every CPU allowed).
    const int each = cores / 2;
    const auto block = [&](int rank) {
      return each == 1 ? "core " + std::to_string(rank)
                       : "cores " + std::to_string(rank * each) + "-" + std::to_string(rank * each + each - 1);
    };
    EXPECT_EQ(lines[0], "rank=0 size=2 launcher=local binding=" + block(0) + " threads=" + std::to_string(each) +
                            " oversubscribed=0");
    EXPECT_EQ(lines[1], "rank=1 size=2 launcher=local binding=" + block(1) + " threads=" + std::to_string(each) +
                            " oversubscribed=0");
  }
  std::remove(output.c_str());
}

TEST(LaunchLocal, MoreRanksThanCoresAreUnboundAndOversubscribed) {
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  const std::string output = temp_path("oversubscribed");
  LocalLaunchOptions options;
  options.ranks = cores + 1;
  const auto result = launch_with_role("allgather", options, output);
  EXPECT_EQ(result.status, 0) << result.errors;
  const auto lines = read_lines(output);
  ASSERT_EQ(lines.size(), static_cast<size_t>(cores + 1)) << result.errors;
  for (const auto& line : lines)
    EXPECT_NE(line.find("binding=none threads=1 oversubscribed=1"), std::string::npos) << line;
  std::remove(output.c_str());
}

TEST(LaunchLocal, BindNoneLeavesRanksUnbound) {
  const std::string output = temp_path("unbound");
  LocalLaunchOptions options;
  options.ranks = 2;
  options.bind = false;
  const auto result = launch_with_role("allgather", options, output);
  EXPECT_EQ(result.status, 0) << result.errors;
  for (const auto& line : read_lines(output)) EXPECT_NE(line.find("binding=none"), std::string::npos) << line;
  std::remove(output.c_str());
}

TEST(LaunchLocal, ARankExitingNonZeroStopsTheOthers) {
  LocalLaunchOptions options;
  options.ranks = 3;
  const auto result = launch_with_role("fail", options);
  EXPECT_EQ(result.status, 3);
  EXPECT_NE(result.errors.find("cclab: rank 1 exited with status 3; stopped the other ranks\n"), std::string::npos)
      << result.errors;
  EXPECT_LT(result.seconds, 10.0) << "the others should be stopped, not left to time out";
}

TEST(LaunchLocal, ARankKilledBySignalIsNamed) {
  LocalLaunchOptions options;
  options.ranks = 3;
  const auto result = launch_with_role("crash", options);
  EXPECT_EQ(result.status, 128 + SIGKILL);
  EXPECT_NE(result.errors.find("cclab: rank 1 (pid "), std::string::npos) << result.errors;
  EXPECT_NE(result.errors.find(") was killed by signal 9 (Killed); stopped the other ranks\n"), std::string::npos)
      << result.errors;
  EXPECT_LT(result.seconds, 10.0);
}

TEST(LaunchLocal, DifferentArgumentsAreAUsageError) {
  LocalLaunchOptions options;
  options.ranks = 2;
  const auto result = launch_with_role("mismatch", options);
  EXPECT_EQ(result.status, 2);
  EXPECT_NE(result.errors.find("cclab: rank 1 was started with different arguments than rank 0"), std::string::npos)
      << result.errors;
  EXPECT_EQ(result.errors.find("stopped"), std::string::npos) << "every rank stopped by itself:\n" << result.errors;
}

TEST(LaunchLocal, ARankThatNeverJoinsIsNamedByTheOthers) {
  LocalLaunchOptions options;
  options.ranks = 2;
  const auto result = launch_with_role("hang-before-join", options);
  EXPECT_EQ(result.status, 1);
  EXPECT_NE(result.errors.find("cclab: rank 0: rendezvous timed out after 1 s: rank 1 never arrived"),
            std::string::npos)
      << result.errors;
  EXPECT_NE(result.errors.find("cclab: rank 0 exited with status 1; stopped the other ranks"), std::string::npos)
      << result.errors;
  EXPECT_LT(result.seconds, 10.0);
}

TEST(LaunchLocal, ThroughMpirun) {
  if (system("command -v mpirun > /dev/null 2>&1") != 0) GTEST_SKIP() << "mpirun is not installed";
  const std::string output = temp_path("mpirun");
  LocalLaunchOptions options;
  options.ranks = 2;
  options.through_mpirun = true;
  const auto result = launch_with_role("allgather", options, output);
  EXPECT_EQ(result.status, 0) << result.errors;
  const auto lines = read_lines(output);
  ASSERT_EQ(lines.size(), 2u) << result.errors;
  EXPECT_NE(lines[0].find("rank=0 size=2 launcher=mpi"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find("rank=1 size=2 launcher=mpi"), std::string::npos) << lines[1];
  std::remove(output.c_str());
}

/// Starts this binary as one env-launched rank (no supervisor: the way srun or a script would).
pid_t spawn_env_rank(int rank, int size, const std::string& store, const std::string& token,
                     const std::string& output) {
  std::vector<std::string> env;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string text = *entry;
    if (text.rfind("CCLAB_", 0) != 0 && text.rfind("OMPI_", 0) != 0 && text.rfind("SLURM_", 0) != 0)
      env.push_back(text);
  }
  env.push_back("CCLAB_RANK=" + std::to_string(rank));
  env.push_back("CCLAB_WORLD_SIZE=" + std::to_string(size));
  env.push_back("CCLAB_STORE=" + store);
  env.push_back("CCLAB_TOKEN=" + token);
  env.push_back(std::string(kRoleVariable) + "=allgather");
  env.push_back(std::string(kOutputVariable) + "=" + output);
  std::vector<char*> envp;
  for (auto& text : env) envp.push_back(text.data());
  envp.push_back(nullptr);
  std::string name = "bootstrap_test";
  char* argv[] = {name.data(), nullptr};
  pid_t pid = -1;
  EXPECT_EQ(posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv, envp.data()), 0);
  return pid;
}

/// waitpid with a deadline; kills the child and fails the test if it runs past it.
int wait_bounded(pid_t pid, double seconds) {
  const Deadline deadline = Deadline::after(seconds);
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (deadline.passed()) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      ADD_FAILURE() << "process " << pid << " did not finish in " << seconds << " s";
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return status;
}

TEST(EnvLaunch, ThreeProcessesRendezvousThroughRankZerosStore) {
  const std::string output = temp_path("env");
  const std::string store = "127.0.0.1:" + std::to_string(unused_port());
  const std::string token = make_job_token();
  // Rank 0 (the store's host) starts last: the others must retry until it is up.
  std::vector<pid_t> pids;
  pids.push_back(spawn_env_rank(2, 3, store, token, output));
  pids.push_back(spawn_env_rank(1, 3, store, token, output));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  pids.push_back(spawn_env_rank(0, 3, store, token, output));
  for (pid_t pid : pids) {
    const int status = wait_bounded(pid, 15);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status;
  }
  const auto lines = read_lines(output);
  ASSERT_EQ(lines.size(), 3u);
  for (int rank = 0; rank < 3; ++rank)
    EXPECT_NE(lines[rank].find("rank=" + std::to_string(rank) + " size=3 launcher=env"), std::string::npos)
        << lines[rank];
  std::remove(output.c_str());
}

}  // namespace
}  // namespace cclab
