// UcxTransport with ranks as threads: each thread has its own ThreadBootstrap (sharing one
// ThreadJob) and its own UcxTransport (own UCP context and worker).
#include "transports/ucx/ucx_transport.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bootstrap/thread_bootstrap.h"
#include "cclab/error.h"
#include "cclab/wire.h"

namespace cclab {
namespace {

constexpr double kTimeout = 10.0;  // seconds; generous, a healthy exchange takes milliseconds

using RankBody = std::function<void(UcxTransport&, Bootstrap&)>;

/// Runs `body` on `ranks` threads, each with its own transport; rethrows the first failure.
void run_ranks(int ranks, const RankBody& body, bool orderly_shutdown = true, UcxOptions options = {}) {
  auto job = std::make_shared<ThreadJob>(ranks);
  std::vector<std::exception_ptr> errors(ranks);
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r) {
    threads.emplace_back([&, r] {
      try {
        ThreadBootstrap bootstrap(job, r);
        UcxTransport transport(bootstrap, kTimeout, options);
        // Ranks may outnumber cores (2-core CI machines); yield so waiting ranks do not starve others.
        transport.set_yield_when_idle(true);
        // A failing rank still joins the collective shutdown, so its peers do not block there.
        std::exception_ptr failure;
        try {
          body(transport, bootstrap);
        } catch (...) {
          failure = std::current_exception();
        }
        if (orderly_shutdown) transport.shutdown();
        if (failure) std::rethrow_exception(failure);
      } catch (...) {
        errors[r] = std::current_exception();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int r = 0; r < ranks; ++r) {
    if (!errors[r]) continue;
    try {
      std::rethrow_exception(errors[r]);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "rank " << r << ": " << e.what();
    }
  }
}

/// Every behavioural test runs in both UCX error modes: "peer" (TCP within a node in UCX 1.13)
/// and "none" (shared memory + CMA).
class UcxModes : public ::testing::TestWithParam<bool> {
 protected:
  UcxOptions options() const {
    UcxOptions o;
    o.peer_error_handling = GetParam();
    return o;
  }
  void run(int ranks, const RankBody& body, bool orderly_shutdown = true) {
    run_ranks(ranks, body, orderly_shutdown, options());
  }
};
INSTANTIATE_TEST_SUITE_P(ErrorMode, UcxModes, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "peer" : "none"; });

uint8_t pattern(int from, int to, size_t message, size_t i) {
  return uint8_t(from * 131 + to * 31 + message * 7 + i * 13 + (i >> 8) * 5);
}

const std::vector<size_t> kSizes = {0, 1, 8, 64 << 10, 4 << 20};

/// Every rank sends every size to every other rank with a distinct tag per size, verifies the
/// data and the per-peer counters. `receives_first` chooses expected vs unexpected messages.
void all_pairs_exchange(int ranks, bool receives_first, UcxOptions options) {
  run_ranks(ranks, [&](UcxTransport& t, Bootstrap&) {
    const int me = t.rank(), n = t.size();
    std::vector<std::vector<std::vector<uint8_t>>> out(n), in(n);
    for (int p = 0; p < n; ++p) {
      if (p == me) continue;
      for (size_t m = 0; m < kSizes.size(); ++m) {
        out[p].emplace_back(kSizes[m]);
        for (size_t i = 0; i < kSizes[m]; ++i) out[p][m][i] = pattern(me, p, m, i);
        in[p].emplace_back(kSizes[m], uint8_t(0xEE));
      }
    }
    std::vector<RequestPtr> requests;
    auto post_receives = [&] {
      for (int p = 0; p < n; ++p)
        if (p != me)
          for (size_t m = kSizes.size(); m-- > 0;)  // reverse order: matching is by tag, not order
            requests.push_back(t.recv(p, in[p][m].data(), kSizes[m], message_tag(7, m + 1)));
    };
    auto post_sends = [&] {
      for (int p = 0; p < n; ++p)
        if (p != me)
          for (size_t m = 0; m < kSizes.size(); ++m)
            requests.push_back(t.send(p, out[p][m].data(), kSizes[m], message_tag(7, m + 1)));
    };
    if (receives_first) {
      post_receives();
      post_sends();
    } else {
      post_sends();
      post_receives();
    }
    t.wait_all(requests, Deadline::after(kTimeout));

    uint64_t per_peer_bytes = 0;
    for (size_t size : kSizes) per_peer_bytes += size;
    const auto& c = t.counters();
    for (int p = 0; p < n; ++p) {
      if (p == me) {
        EXPECT_EQ(c.bytes_sent[p], 0u);
        EXPECT_EQ(c.messages_received[p], 0u);
        continue;
      }
      for (size_t m = 0; m < kSizes.size(); ++m) {
        size_t wrong = 0;
        for (size_t i = 0; i < kSizes[m]; ++i) wrong += in[p][m][i] != pattern(p, me, m, i);
        EXPECT_EQ(wrong, 0u) << "rank " << me << " from " << p << " size " << kSizes[m];
      }
      EXPECT_EQ(c.bytes_sent[p], per_peer_bytes);
      EXPECT_EQ(c.bytes_received[p], per_peer_bytes);
      EXPECT_EQ(c.messages_sent[p], kSizes.size());
      EXPECT_EQ(c.messages_received[p], kSizes.size());
    }
    EXPECT_EQ(c.total_bytes_sent(), per_peer_bytes * (n - 1));
    EXPECT_EQ(c.total_bytes_received(), per_peer_bytes * (n - 1));
  }, true, options);
}

TEST(UcxTransport, VersionAndName) {
  EXPECT_FALSE(UcxTransport::version().empty());
  std::printf("UCX %s\n", UcxTransport::version().c_str());
}

TEST_P(UcxModes, EndpointInfoNamesTheLanes) {
  run(2, [](UcxTransport& t, Bootstrap&) {
    EXPECT_EQ(t.name(), "ucx");
    uint64_t value = 0;
    RequestPtr r = t.recv(1 - t.rank(), &value, 8, 3);
    RequestPtr s = t.send(1 - t.rank(), &value, 8, 3);
    t.wait(*s, Deadline::after(kTimeout));
    t.wait(*r, Deadline::after(kTimeout));
    const std::string info = t.endpoint_info(1 - t.rank());
    EXPECT_NE(info.find("lane"), std::string::npos) << info;
    if (t.rank() == 0) {  // which transports UCX picked, for the log
      std::string lanes;
      for (size_t pos = info.find("lane["); pos != std::string::npos; pos = info.find("lane[", pos + 1))
        lanes += info.substr(pos, info.find('\n', pos) - pos) + "; ";
      std::printf("error mode %s: %s\n", t.options().peer_error_handling ? "peer" : "none", lanes.c_str());
    }
  });
}

TEST(UcxTransport, ErrorModesMustAgree) {
  auto job = std::make_shared<ThreadJob>(2);
  std::vector<std::string> errors(2);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r)
    threads.emplace_back([&, r] {
      ThreadBootstrap bootstrap(job, r);
      UcxOptions options;
      options.peer_error_handling = r == 0;
      try {
        UcxTransport transport(bootstrap, kTimeout, options);
      } catch (const Error& e) {
        errors[r] = e.what();
      }
    });
  for (auto& thread : threads) thread.join();
  for (const std::string& error : errors) EXPECT_NE(error.find("CCLAB_UCX_ERROR_MODE"), std::string::npos) << error;
}

TEST(UcxTransport, ErrorModeFromEnvironment) {
  ::setenv("CCLAB_UCX_ERROR_MODE", "none", 1);
  EXPECT_FALSE(UcxOptions::from_env().peer_error_handling);
  ::setenv("CCLAB_UCX_ERROR_MODE", "peer", 1);
  EXPECT_TRUE(UcxOptions::from_env().peer_error_handling);
  ::setenv("CCLAB_UCX_ERROR_MODE", "bogus", 1);
  EXPECT_THROW(UcxOptions::from_env(), UsageError);
  ::unsetenv("CCLAB_UCX_ERROR_MODE");
  EXPECT_FALSE(UcxOptions::from_env().peer_error_handling);  // shared memory by default
}

// The wire: UCX's own choice within a host is shared memory; a context restricted to TCP says tcp,
// as soon as the endpoint exists (records read it before any traffic) and after traffic alike.
TEST(UcxTransport, WireNamesTheTransportsOfTheLanes) {
  run_ranks(2, [](UcxTransport& t, Bootstrap&) {
    EXPECT_EQ(t.name(), "ucx");
    EXPECT_TRUE(names_shared_memory(t.wire_to(1 - t.rank()))) << t.wire_to(1 - t.rank());
  });
  UcxOptions tcp;
  tcp.transports = "tcp";
  tcp.net_devices = "lo";
  run_ranks(
      2,
      [](UcxTransport& t, Bootstrap&) {
        EXPECT_EQ(t.name(), "ucx:tcp");
        EXPECT_EQ(t.wire_to(1 - t.rank()), "tcp");
        uint64_t value = 0;
        RequestPtr r = t.recv(1 - t.rank(), &value, 8, 5);
        RequestPtr s = t.send(1 - t.rank(), &value, 8, 5);
        t.wait(*s, Deadline::after(kTimeout));
        t.wait(*r, Deadline::after(kTimeout));
        EXPECT_EQ(t.wire_to(1 - t.rank()), "tcp");
      },
      true, tcp);
}

// UcxOptions::connect_to: no endpoint to a rank left out, and messages to it are refused by name.
TEST(UcxTransport, ConnectsOnlyToTheRanksNamed) {
  UcxOptions none;
  none.connect_to = {false, false};
  run_ranks(
      2,
      [](UcxTransport& t, Bootstrap&) {
        EXPECT_EQ(t.wire_to(1 - t.rank()), "");
        uint64_t value = 0;
        try {
          t.send(1 - t.rank(), &value, 8, 1);
          ADD_FAILURE() << "a send without an endpoint was accepted";
        } catch (const Error& error) {
          EXPECT_NE(std::string(error.what()).find("no endpoint to rank"), std::string::npos) << error.what();
        }
        EXPECT_THROW(t.recv(1 - t.rank(), &value, 8, 1), Error);
      },
      true, none);
}

TEST_P(UcxModes, AllPairsTwoRanksReceivesFirst) { all_pairs_exchange(2, true, options()); }
TEST_P(UcxModes, AllPairsTwoRanksSendsFirst) { all_pairs_exchange(2, false, options()); }
TEST_P(UcxModes, AllPairsThreeRanksReceivesFirst) { all_pairs_exchange(3, true, options()); }
TEST_P(UcxModes, AllPairsThreeRanksSendsFirst) { all_pairs_exchange(3, false, options()); }

TEST_P(UcxModes, TagMatchingOutOfOrder) {
  run(2, [](UcxTransport& t, Bootstrap& b) {
    if (t.rank() == 0) {
      std::vector<uint8_t> two(64 << 10, 0), one(8, 0);
      // Receive for tag 2 posted before the one for tag 1; the sender sends tag 1 first.
      RequestPtr r2 = t.recv(1, two.data(), two.size(), 2);
      RequestPtr r1 = t.recv(1, one.data(), one.size(), 1);
      b.barrier();
      t.wait(*r1, Deadline::after(kTimeout));  // the later-posted receive completes on its own
      t.wait(*r2, Deadline::after(kTimeout));
      EXPECT_EQ(one, std::vector<uint8_t>(8, 1));
      EXPECT_EQ(two, std::vector<uint8_t>(64 << 10, 2));
    } else {
      std::vector<uint8_t> one(8, 1), two(64 << 10, 2);
      b.barrier();  // receives are posted
      RequestPtr s1 = t.send(0, one.data(), one.size(), 1);
      RequestPtr s2 = t.send(0, two.data(), two.size(), 2);
      t.wait(*s1, Deadline::after(kTimeout));
      t.wait(*s2, Deadline::after(kTimeout));
    }
  });
}

TEST_P(UcxModes, SameTagDifferentSenders) {
  // The sender's rank is part of the wire tag: the same caller tag from two peers never mixes.
  run(3, [](UcxTransport& t, Bootstrap&) {
    if (t.rank() == 0) {
      uint64_t from1 = 0, from2 = 0;
      std::vector<RequestPtr> rs;
      rs.push_back(t.recv(2, &from2, 8, 42));
      rs.push_back(t.recv(1, &from1, 8, 42));
      t.wait_all(rs, Deadline::after(kTimeout));
      EXPECT_EQ(from1, 1001u);
      EXPECT_EQ(from2, 1002u);
    } else {
      uint64_t value = 1000 + t.rank();
      RequestPtr s = t.send(0, &value, 8, 42);
      t.wait(*s, Deadline::after(kTimeout));
    }
  });
}

TEST_P(UcxModes, ReceiveWithoutSendTimesOutNamingPeer) {
  run(2, [](UcxTransport& t, Bootstrap&) {
    if (t.rank() != 0) return;  // rank 1 never sends; it waits in shutdown's barrier
    uint64_t value = 0;
    RequestPtr r = t.recv(1, &value, 8, 12345);
    const auto start = std::chrono::steady_clock::now();
    try {
      t.wait(*r, Deadline::after(0.5));
      ADD_FAILURE() << "wait returned without a matching send";
    } catch (const TimeoutError& e) {
      const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      EXPECT_NE(std::string(e.what()).find("rank 1"), std::string::npos) << e.what();
      EXPECT_GE(waited, 0.45);
      EXPECT_LT(waited, 1.5);
    }
    // The abandoned receive is cancelled when destroyed; the transport stays usable.
  });
}

TEST_P(UcxModes, LengthMismatchIsAnError) {
  run(2, [](UcxTransport& t, Bootstrap&) {
    std::vector<uint8_t> buffer(16, 0);
    if (t.rank() == 0) {
      RequestPtr a = t.send(1, buffer.data(), 16, 1);  // longer than the receive: truncation
      RequestPtr b = t.send(1, buffer.data(), 4, 2);   // shorter than the receive
      t.wait(*a, Deadline::after(kTimeout));
      t.wait(*b, Deadline::after(kTimeout));
    } else {
      RequestPtr a = t.recv(0, buffer.data(), 8, 1);
      EXPECT_THROW(t.wait(*a, Deadline::after(kTimeout)), Error);
      RequestPtr b = t.recv(0, buffer.data(), 8, 2);
      EXPECT_THROW(t.wait(*b, Deadline::after(kTimeout)), Error);
    }
  });
}

TEST_P(UcxModes, DeadPeerDoesNotHang) {
  // Rank 1 destroys its transport without the collective shutdown; rank 0's wait must end in an
  // Error naming rank 1 (peer failure or timeout) and its own teardown must stay bounded.
  run(
      2,
      [](UcxTransport& t, Bootstrap& b) {
        uint64_t value = 7;
        if (t.rank() == 1) {
          RequestPtr s = t.send(0, &value, 8, 1);  // make sure the connection is up
          t.wait(*s, Deadline::after(kTimeout));
          b.barrier();
          return;  // transport destroyed right after (no shutdown)
        }
        RequestPtr r = t.recv(1, &value, 8, 1);
        t.wait(*r, Deadline::after(kTimeout));
        b.barrier();
        RequestPtr never = t.recv(1, &value, 8, 2);
        const auto start = std::chrono::steady_clock::now();
        try {
          t.wait(*never, Deadline::after(1.0));
          ADD_FAILURE() << "wait returned without a matching send";
        } catch (const Error& e) {
          std::printf("rank 0 got: %s\n", e.what());
          EXPECT_NE(std::string(e.what()).find("rank 1"), std::string::npos) << e.what();
        }
        EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 2.0);
      },
      /*orderly_shutdown=*/false);
}

TEST(UcxTransport, RequestMayOutliveTransport) {
  RequestPtr orphan;
  run_ranks(
      2,
      [&](UcxTransport& t, Bootstrap&) {
        static uint64_t value;
        if (t.rank() == 0) orphan = t.recv(1, &value, 8, 99);
      },
      /*orderly_shutdown=*/true);
  ASSERT_TRUE(orphan);
  EXPECT_THROW(orphan->complete(), Error);
}

TEST_P(UcxModes, ShutdownIsPromptEvenWithoutTraffic) {
  // Lazily connected endpoints may need the peer's worker during flush/close; shutdown keeps the
  // worker progressing inside its barriers, so it should never sit out the 2 s teardown bound.
  for (int ranks : {2, 3}) {
    const auto start = std::chrono::steady_clock::now();
    run(ranks, [](UcxTransport&, Bootstrap&) {});
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 1.5);
  }
}

TEST_P(UcxModes, DestructorAloneIsBounded) {
  // Without shutdown() each rank tears down on its own after its traffic; a peer that is already
  // gone must not make the others wait more than the teardown bounds (2 x 2 s).
  for (int ranks : {2, 3, -2, -3}) {  // negative: no traffic at all (endpoints never connected)
    const bool traffic = ranks > 0;
    ranks = std::abs(ranks);
    const auto start = std::chrono::steady_clock::now();
    run(
        ranks,
        [traffic](UcxTransport& t, Bootstrap&) {
          if (!traffic) return;
          uint64_t value = t.rank();
          std::vector<RequestPtr> rs;
          std::vector<uint64_t> in(t.size());
          for (int p = 0; p < t.size(); ++p)
            if (p != t.rank()) {
              rs.push_back(t.recv(p, &in[p], 8, 5));
              rs.push_back(t.send(p, &value, 8, 5));
            }
          t.wait_all(rs, Deadline::after(kTimeout));
        },
        /*orderly_shutdown=*/false);
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%d ranks, %s, destructor-only teardown: %.3f s\n", ranks, traffic ? "after traffic" : "no traffic",
                took);
    EXPECT_LT(took, 4.5);
  }
}

TEST(UcxTransport, RejectsBadPeerAndTag) {
  run_ranks(2, [](UcxTransport& t, Bootstrap&) {
    uint64_t value = 0;
    EXPECT_THROW(t.send(t.rank(), &value, 8, 1), Error);
    EXPECT_THROW(t.recv(5, &value, 8, 1), Error);
    EXPECT_THROW(t.send(1 - t.rank(), &value, 8, uint64_t{1} << 48), Error);
  });
}

}  // namespace
}  // namespace cclab
