// A job of ranks that are threads (bootstrap/thread_ranks.h), as device-loopback runs: every rank's
// result is kept, and a rank that fails or never arrives ends the others' waits with its name.
#include "bootstrap/thread_ranks.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "cclab/error.h"

namespace cclab {
namespace {

CommOptions options_with_timeout(double timeout_s) {
  CommOptions options;
  options.timeout_s = timeout_s;
  options.yield_when_idle = true;
  return options;
}

std::string what(const std::exception_ptr& failure) {
  try {
    std::rethrow_exception(failure);
  } catch (const std::exception& error) {
    return error.what();
  }
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

TEST(ThreadRanks, EveryRankRunsWithItsOwnCommAndTheChecksOfAllCount) {
  const ThreadRanksOutcome passed = run_ranks_as_threads(3, options_with_timeout(30), [](Comm& comm) {
    const auto all = comm.allgather(std::to_string(comm.rank()));
    EXPECT_EQ(all, (std::vector<std::string>{"0", "1", "2"}));
    EXPECT_EQ(comm.size(), 3);
    return true;
  });
  EXPECT_TRUE(passed.passed);
  EXPECT_FALSE(passed.failure);
  const ThreadRanksOutcome one_failed_check =
      run_ranks_as_threads(3, options_with_timeout(30), [](Comm& comm) { return comm.rank() != 2; });
  EXPECT_FALSE(one_failed_check.passed);
  EXPECT_FALSE(one_failed_check.failure);
}

// The others wait in an exchange with a long timeout; rank 1's failure ends their waits at once,
// and the outcome names rank 1 and its reason, not the ranks that stopped because of it.
TEST(ThreadRanks, ARankThatFailsEndsTheOthersWaitsAtOnce) {
  const auto start = std::chrono::steady_clock::now();
  const ThreadRanksOutcome outcome = run_ranks_as_threads(4, options_with_timeout(60), [](Comm& comm) {
    if (comm.rank() == 1) throw Error("its disk is full");
    comm.barrier();
    return true;
  });
  EXPECT_LT(seconds_since(start), 20);
  EXPECT_FALSE(outcome.passed);
  ASSERT_TRUE(outcome.failure);
  EXPECT_EQ(outcome.failed_rank, 1);
  EXPECT_EQ(what(outcome.failure), "its disk is full");
}

// Rank 2 arrives long after the timeout: the others give up at the timeout and name it.
TEST(ThreadRanks, ARankThatNeverArrivesIsNamedAtTheTimeout) {
  const ThreadRanksOutcome outcome = run_ranks_as_threads(3, options_with_timeout(1), [](Comm& comm) {
    if (comm.rank() == 2) std::this_thread::sleep_for(std::chrono::seconds(3));
    comm.barrier();
    return true;
  });
  ASSERT_TRUE(outcome.failure);
  EXPECT_NE(outcome.failed_rank, 2);
  EXPECT_NE(what(outcome.failure).find("for rank(s) 2 (--timeout)"), std::string::npos) << what(outcome.failure);
  try {
    std::rethrow_exception(outcome.failure);
  } catch (const TimeoutError&) {
  } catch (...) {
    ADD_FAILURE() << "not a TimeoutError: " << what(outcome.failure);
  }
}

}  // namespace
}  // namespace cclab
