// The mailboxes of a one-node job (MailboxTransport over UCX), with ranks as threads: small messages
// arrive whole and matched by tag in any order, more of them than a ring holds, next to larger
// ones through UCX; a sender held back by a full ring gets through while its receiver only polls;
// a wrong length is an error; jobs on several nodes, or with CCLAB_UCX_MAILBOXES=off, send
// everything through UCX.
#include "transports/shared_memory/mailbox_transport.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <thread>
#include <vector>

#include "cclab/error.h"
#include "thread_ranks.h"

namespace cclab {
namespace {

// Message `index` from `from` to `to`: its size cycles over the edges of the slots (one slot holds
// 48 bytes, later ones 56 each) up to kMostBytes + 1 (through UCX), and its bytes tell where it
// came from.
size_t message_bytes(int index) {
  constexpr size_t kSizes[] = {0, 1, 8, 47, 48, 49, 104, 105, 1000, MailboxTransport::kMostBytes - 1,
                               MailboxTransport::kMostBytes, MailboxTransport::kMostBytes + 1};
  return kSizes[size_t(index) % std::size(kSizes)];
}
std::vector<std::byte> message(int from, int to, int index) {
  std::vector<std::byte> bytes(message_bytes(index));
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = std::byte(from * 31 + to * 7 + index + int(i));
  return bytes;
}

TEST(MailboxTransport, OneNodeJobsUseThemOthersDoNot) {
  std::vector<std::string> names(2);
  auto record_name = [&](Comm& comm) { names[size_t(comm.rank())] = comm.transport().name(); };
  ASSERT_EQ(run_ranks(2, 0, record_name), "");
  EXPECT_EQ(names[0], "ucx+shm");
  ASSERT_EQ(run_ranks(2, 1, record_name), "");
  EXPECT_EQ(names[0], "ucx") << "two virtual nodes";
  ::setenv("CCLAB_UCX_MAILBOXES", "off", 1);
  const std::string failure = run_ranks(2, 0, record_name);
  ::unsetenv("CCLAB_UCX_MAILBOXES");
  ASSERT_EQ(failure, "");
  EXPECT_EQ(names[0], "ucx");
}

// Every rank sends kMessages to every other and receives theirs, posting receives in an order of
// its own (reversed for odd senders), so messages arrive before and after their receives; a ring
// holds fewer than kMessages, so senders wait for receivers to take them.
TEST(MailboxTransport, EveryMessageArrivesWholeInAnyOrderOfReceives) {
  constexpr int kRanks = 3, kMessages = 3 * int(MailboxTransport::kSlots);
  const std::string failure = run_ranks(kRanks, 0, [](Comm& comm) {
    Transport& transport = comm.transport();
    ASSERT_EQ(transport.name(), "ucx+shm");
    const int me = comm.rank();
    std::vector<std::vector<std::byte>> outgoing, incoming;
    std::vector<RequestPtr> requests;
    std::vector<std::pair<int, int>> expected;  // (from, index) per incoming buffer
    for (int peer = 0; peer < kRanks; ++peer) {
      if (peer == me) continue;
      for (int k = 0; k < kMessages; ++k) {
        const int index = peer % 2 ? kMessages - 1 - k : k;
        incoming.emplace_back(message_bytes(index));
        expected.emplace_back(peer, index);
      }
    }
    for (size_t i = 0; i < incoming.size(); ++i)
      requests.push_back(transport.recv(expected[i].first, incoming[i].data(), incoming[i].size(),
                                        message_tag(7, uint64_t(expected[i].second))));
    for (int peer = 0; peer < kRanks; ++peer) {
      if (peer == me) continue;
      for (int index = 0; index < kMessages; ++index) {
        outgoing.push_back(message(me, peer, index));
        requests.push_back(
            transport.send(peer, outgoing.back().data(), outgoing.back().size(), message_tag(7, uint64_t(index))));
      }
    }
    transport.wait_all(requests, Deadline::after(10));
    for (size_t i = 0; i < incoming.size(); ++i)
      EXPECT_EQ(incoming[i], message(expected[i].first, me, expected[i].second))
          << "rank " << me << " message " << expected[i].second << " from " << expected[i].first;
    uint64_t sent = 0;
    for (int index = 0; index < kMessages; ++index) sent += message_bytes(index);
    EXPECT_EQ(transport.counters().total_bytes_sent(), sent * (kRanks - 1)) << "each message counted once";
  });
  EXPECT_EQ(failure, "");
}

// Messages wait in the ring for their receives, so a sender that runs ahead fills the ring and is
// held back. A receiver that polls without posting a receive (it waits for something else, which
// the sender would send only later) must still let the sender through: its polls set the waiting
// messages aside.
TEST(MailboxTransport, ASenderHeldBackByAFullRingGetsThroughWhileItsReceiverOnlyPolls) {
  constexpr int kMessages = 3 * int(MailboxTransport::kSlots);
  std::atomic<bool> all_posted = false, all_sent = false;
  const std::string failure = run_ranks(2, 0, [&](Comm& comm) {
    Transport& transport = comm.transport();
    ASSERT_EQ(transport.name(), "ucx+shm");
    if (comm.rank() == 0) {
      std::vector<uint64_t> values(kMessages);
      std::vector<RequestPtr> sends;
      for (int i = 0; i < kMessages; ++i) {
        values[size_t(i)] = uint64_t(1000 + i);
        sends.push_back(transport.send(1, &values[size_t(i)], sizeof(uint64_t), message_tag(3, uint64_t(i))));
      }
      EXPECT_FALSE(sends.back()->complete()) << "more messages than a ring holds went out with no receiver polling";
      all_posted = true;
      transport.wait_all(sends, Deadline::after(10));
      all_sent = true;
    } else {
      while (!all_posted) std::this_thread::yield();
      const Deadline deadline = Deadline::after(10);
      while (!all_sent && !deadline.passed()) transport.progress();
      ASSERT_TRUE(all_sent.load()) << "the sender still waits for ring space";
      std::vector<uint64_t> values(kMessages);
      std::vector<RequestPtr> receives;
      for (int i = 0; i < kMessages; ++i)
        receives.push_back(transport.recv(0, &values[size_t(i)], sizeof(uint64_t), message_tag(3, uint64_t(i))));
      transport.wait_all(receives, Deadline::after(10));
      for (int i = 0; i < kMessages; ++i) EXPECT_EQ(values[size_t(i)], uint64_t(1000 + i)) << "message " << i;
    }
  });
  EXPECT_EQ(failure, "");
}

TEST(MailboxTransport, AReceiveOfAnotherLengthIsAnError) {
  const std::string failure = run_ranks(2, 0, [](Comm& comm) {
    Transport& transport = comm.transport();
    std::byte data[8] = {};
    if (comm.rank() == 0) {
      auto send = transport.send(1, data, 4, message_tag(1, 1));
      transport.wait(*send, Deadline::after(10));
    } else {
      auto receive = transport.recv(0, data, 8, message_tag(1, 1));
      try {
        transport.wait(*receive, Deadline::after(10));
        ADD_FAILURE() << "a 4-byte message filled an 8-byte receive";
      } catch (const Error& error) {
        EXPECT_NE(std::string(error.what()).find("expected 8 bytes from rank 0, the message has 4"), std::string::npos)
            << error.what();
      }
    }
    comm.barrier();
  });
  EXPECT_EQ(failure, "");
}

}  // namespace
}  // namespace cclab
