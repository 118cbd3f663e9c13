// NodeSharedMemory with ranks as threads (each its own Comm over a ThreadBootstrap): every rank
// maps every segment, sees what the others wrote once their counters say so, and a job whose ranks
// are on several (virtual) nodes gets none, with the reason.
#include "cclab/node_shared_memory.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "thread_ranks.h"

namespace cclab {
namespace {

constexpr int kRanks = 3;

TEST(NodeSharedMemory, EveryRankSeesWhatTheOthersPublished) {
  const std::string failure = run_ranks(kRanks, 0, [](Comm& comm) {
    std::string why_not;
    auto shared = NodeSharedMemory::create(comm, 10000, &why_not);
    ASSERT_NE(shared, nullptr) << why_not;
    EXPECT_EQ(shared->ranks(), kRanks);
    EXPECT_GE(shared->segment_bytes(), 10000u);
    EXPECT_EQ(shared->segment_bytes() % 4096, 0u);
    // Segment layout of this test: a counter, then a payload of 1000 ints.
    auto counter = [&](int rank) { return SharedCounter(reinterpret_cast<uint64_t*>(shared->segment(rank))); };
    auto payload = [&](int rank) { return reinterpret_cast<int*>(shared->segment(rank) + 64); };
    for (int step = 1; step <= 3; ++step) {
      for (int i = 0; i < 1000; ++i) payload(comm.rank())[i] = comm.rank() * 100000 + step * 1000 + i;
      counter(comm.rank()).raise_to(uint64_t(step));
      for (int peer = 0; peer < kRanks; ++peer) {
        const Deadline deadline = Deadline::after(10);
        while (!counter(peer).reached(uint64_t(step))) {
          ASSERT_FALSE(deadline.passed()) << "rank " << peer << " never published step " << step;
          std::this_thread::yield();
        }
        for (int i = 0; i < 1000; i += 97) EXPECT_EQ(payload(peer)[i], peer * 100000 + step * 1000 + i);
      }
      comm.barrier();  // nobody overwrites a payload a peer may still read
    }
  });
  EXPECT_EQ(failure, "");
}

TEST(NodeSharedMemory, RanksOnSeveralNodesGetNoneAndTheReason) {
  const std::string failure = run_ranks(2, 1, [](Comm& comm) {
    std::string why_not;
    EXPECT_EQ(NodeSharedMemory::create(comm, 4096, &why_not), nullptr);
    EXPECT_NE(why_not.find("2 nodes"), std::string::npos) << why_not;
  });
  EXPECT_EQ(failure, "");
}

}  // namespace
}  // namespace cclab
