// The alpha-beta-gamma model: fitting recovers known parameters, and predicted times follow the
// textbook formulas where they exist. A profile file reads back what was written, and nothing else.
#include "cclab/cost_model.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cclab/algorithm.h"
#include "cclab/error.h"
#include "calibration.h"

namespace cclab {
namespace {

CostProfile example_profile() {
  CostProfile profile;
  profile.cached.intra_node = {0.5, 1.0 / 8e3};  // 0.5 us, 8 GB/s
  profile.cached.inter_node = {3.0, 1.0 / 2e3};  // 3 us, 2 GB/s
  profile.cached.gamma_us_per_byte = 1.0 / 20e3;
  profile.cached.copy_us_per_byte = 1.0 / 25e3;
  profile.streaming = profile.cached;
  profile.streaming_curve = {};  // one regime for these tests
  return profile;
}

// A ping-pong between two ranks as schedules: what the p2p latency test does on the wire.
double predicted_ping_pong_us(size_t bytes, const CostProfile& profile) {
  CollectiveArgs args;
  args.dtype = DataType::u8;
  args.count = bytes;
  std::vector<Schedule> schedules(2);
  const uint32_t ping = schedules[0].send(1, 0, {BufferKind::input, 0, bytes});
  schedules[0].recv(1, 1, {BufferKind::output, 0, bytes}, {ping});
  const uint32_t received = schedules[1].recv(0, 0, {BufferKind::output, 0, bytes});
  schedules[1].send(0, 1, {BufferKind::output, 0, bytes}, {received});
  return predict_time_us(Topology::single_node(2), args, schedules, profile) / 2;
}

TEST(CostModel, FitRecoversAlphaAndBetaFromASyntheticSchedule) {
  const CostProfile truth = example_profile();
  std::vector<double> bytes, times;
  for (size_t size = 8; size <= (size_t{4} << 20); size *= 4) {
    bytes.push_back(double(size));
    times.push_back(predicted_ping_pong_us(size, truth));
  }
  const LinkCost fitted = fit_link_cost(bytes, times);
  EXPECT_NEAR(fitted.alpha_us, truth.cached.intra_node.alpha_us, 0.05 * truth.cached.intra_node.alpha_us);
  EXPECT_NEAR(fitted.beta_us_per_byte, truth.cached.intra_node.beta_us_per_byte,
              0.05 * truth.cached.intra_node.beta_us_per_byte);
}

TEST(CostModel, FitToleratesNoise) {
  std::vector<double> bytes, times;
  double wobble = 1.02;
  for (size_t size = 8; size <= (size_t{8} << 20); size *= 2) {
    bytes.push_back(double(size));
    times.push_back((1.5 + double(size) / 5e3) * wobble);  // 1.5 us, 5 GB/s, +-2%
    wobble = 2.04 - wobble;
  }
  const LinkCost fitted = fit_link_cost(bytes, times);
  EXPECT_NEAR(fitted.alpha_us, 1.5, 0.05 * 1.5);
  EXPECT_NEAR(fitted.beta_us_per_byte, 1 / 5e3, 0.05 / 5e3);
  EXPECT_THROW(fit_link_cost({8}, {1.0}), Error);
}

TEST(CostModel, FitBreaksWhereTheTransportsOwnPathEnds) {
  // Mailboxes up to 512 B (a path of their own), UCX above.
  auto truth = [](double size) { return size <= 512 ? 0.3 + size / 2e3 : 2.5 + size / 8e3; };
  std::vector<double> bytes, times;
  for (size_t size = 8; size <= (size_t{4} << 20); size *= 4) {
    bytes.push_back(double(size));
    times.push_back(truth(double(size)));
  }
  const LinkCost fitted = fit_link_cost(bytes, times, 512);
  EXPECT_EQ(fitted.protocol_bytes, 512u);
  for (double size : {8.0, 100.0, 512.0, 2048.0, 65536.0, 4194304.0})
    EXPECT_NEAR(fitted.time_us(size), truth(size), 0.01 * truth(size)) << size << " B";
}

TEST(CostModel, RingAllreduceFollowsTheTextbookFormula) {
  const CostProfile profile = example_profile();
  const Algorithm& ring = *find_algorithm(Collective::allreduce, "ring");
  for (int ranks : {2, 4, 8}) {
    CollectiveArgs args;
    args.count = size_t(ranks) * 1000;
    args.segment_bytes = size_t(1) << 30;  // one segment: no pipelining to account for
    // 2(N-1) steps, each moving one chunk; N-1 of them end in a reduction of that chunk.
    const double chunk = double(args.count) / ranks * 4;
    const double formula = 2 * (ranks - 1) * profile.cached.intra_node.time_us(chunk) +
                           (ranks - 1) * profile.cached.gamma_us_per_byte * chunk;
    EXPECT_NEAR(predict_time_us(ring, Topology::single_node(ranks), args, profile), formula, 1e-6 * formula);
  }
}

TEST(CostModel, SlowerLinksBetweenNodesCostMore) {
  const CostProfile profile = example_profile();
  const Algorithm& ring = *find_algorithm(Collective::allreduce, "ring");
  CollectiveArgs args;
  args.count = 1 << 20;
  const Topology one_node = Topology::single_node(4);
  const Topology two_nodes{{0, 0, 1, 1}};
  EXPECT_GT(predict_time_us(ring, two_nodes, args, profile), predict_time_us(ring, one_node, args, profile));
}

TEST(CostModel, SharingMemoryWithANodePeerCostsWhereTheScheduleSharesIt) {
  // Two ranks, one segment. The ring reduces its half into the output and sends that half on: the
  // reduction writes what the peer read last call, the transfer carries lines dirty in the sender's
  // cache. Recursive doubling sends its input (never written) and reduces into an output nobody
  // reads: it shares nothing.
  CostProfile plain = example_profile(), sharing = plain;
  sharing.cached.shared_write_us_per_byte = sharing.streaming.shared_write_us_per_byte = 0.5e-3;
  sharing.cached.dirty_read_us_per_byte = sharing.streaming.dirty_read_us_per_byte = 0.25e-3;
  CollectiveArgs args;
  args.count = 1 << 18;
  args.segment_bytes = size_t(1) << 30;
  const double half_bytes = double(args.count) / 2 * 4;
  const Topology node = Topology::single_node(2);
  const Algorithm& ring = *find_algorithm(Collective::allreduce, "ring");
  const Algorithm& doubling = *find_algorithm(Collective::allreduce, "recursive_doubling");
  EXPECT_NEAR(predict_time_us(ring, node, args, sharing) - predict_time_us(ring, node, args, plain),
              (0.5e-3 + 0.25e-3) * half_bytes, 1e-6);
  EXPECT_NEAR(predict_time_us(doubling, node, args, sharing), predict_time_us(doubling, node, args, plain), 1e-9);
  // Between nodes the NIC reads the data: no core-to-core sharing.
  const Topology two_nodes{{0, 1}};
  EXPECT_NEAR(predict_time_us(ring, two_nodes, args, sharing), predict_time_us(ring, two_nodes, args, plain), 1e-9);
}

// Two ranks of host 0 send to two ranks of host 1 at once (rank r to rank r + 2).
double predicted_two_flows_us(const CostProfile& profile, size_t bytes) {
  CollectiveArgs args;
  args.dtype = DataType::u8;
  args.count = bytes;
  std::vector<Schedule> schedules(4);
  for (int r : {0, 1}) {
    schedules[size_t(r)].send(r + 2, 0, {BufferKind::input, 0, bytes});
    schedules[size_t(r) + 2].recv(r, 0, {BufferKind::output, 0, bytes});
  }
  return predict_time_us(Topology{{0, 0, 1, 1}}, args, schedules, profile);
}

TEST(CostModel, FlowsBetweenHostsShareTheHostsPorts) {
  CostProfile profile = example_profile();
  const size_t bytes = size_t{1} << 20;
  const LinkCost& link = profile.cached.inter_node;
  const double one_flow = link.time_us(double(bytes));
  // No port limit: each flow runs as if alone.
  EXPECT_NEAR(predicted_two_flows_us(profile, bytes), one_flow, 1e-6);
  // One port as fast as a flow: the second flow's bytes wait for the first's.
  profile.host_ports = {1, link.beta_us_per_byte};
  EXPECT_NEAR(predicted_two_flows_us(profile, bytes), link.alpha_us + 2 * link.beta_us_per_byte * double(bytes), 1e-6);
  // A port twice as fast carries both at a flow's own speed; so do two ports, one per rank, each as fast as a flow.
  profile.host_ports = {1, link.beta_us_per_byte / 2};
  EXPECT_NEAR(predicted_two_flows_us(profile, bytes), one_flow, 1e-6);
  profile.host_ports = {2, link.beta_us_per_byte / 2};
  EXPECT_NEAR(predicted_two_flows_us(profile, bytes), one_flow, 1e-6);
  // hier_rail's two rails cross one port on 2 x 2: with it, the model no longer gives them a link each.
  const Algorithm& rails = *find_algorithm(Collective::allreduce, "hier_rail");
  CollectiveArgs args;
  args.count = size_t{4} << 20;
  const Topology two_by_two{{0, 0, 1, 1}};
  CostProfile one_port = example_profile(), port_per_rail = one_port;
  one_port.host_ports = {1, link.beta_us_per_byte};
  port_per_rail.host_ports = {2, link.beta_us_per_byte / 2};
  EXPECT_GT(predict_time_us(rails, two_by_two, args, one_port),
            1.3 * predict_time_us(rails, two_by_two, args, port_per_rail));
  EXPECT_NEAR(predict_time_us(rails, two_by_two, args, port_per_rail),
              predict_time_us(rails, two_by_two, args, example_profile()), 1e-6);
}

// Rank 2 receives a message from host 0 through a slow host port and, once that is under way,
// one from rank 3 beside it. The bytes waiting at the port wait in the network stack: rank 2 takes
// its node peer's message meanwhile, and the network message still ends when its bytes are through.
TEST(CostModel, BytesQueuedAtAHostPortLeaveTheRanksFreeInsideTheNode) {
  CostProfile profile = example_profile();
  const LinkCost& link = profile.cached.inter_node;
  profile.host_ports = {1, 10 * link.beta_us_per_byte};  // a port 10 times slower than a flow
  const size_t bytes = size_t{1} << 20;
  CollectiveArgs args;
  args.dtype = DataType::u8;
  args.count = bytes;
  std::vector<Schedule> schedules(4);
  schedules[0].send(2, 0, {BufferKind::input, 0, bytes});
  const uint32_t across = schedules[2].recv(0, 0, {BufferKind::output, 0, bytes});
  // Rank 3 sends after a step that ends once the network message has started.
  const uint32_t later = schedules[3].copy({BufferKind::output, 0, bytes}, {BufferKind::input, 0, bytes});
  schedules[3].send(2, 1, {BufferKind::input, 0, bytes}, {later});
  const uint32_t inside = schedules[2].recv(3, 1, {BufferKind::scratch, 0, bytes});
  schedules[2].reduce({BufferKind::output, 0, bytes}, {BufferKind::scratch, 0, bytes}, {BufferKind::output, 0, bytes},
                      false, {across, inside});
  const double through_port = profile.host_ports.port_us_per_byte() * double(bytes) + link.latency_us(double(bytes));
  const double inside_us =
      profile.cached.copy_us_per_byte * double(bytes) + profile.cached.intra_node.time_us(double(bytes));
  ASSERT_LT(inside_us + link.time_us(double(bytes)), through_port);
  // The node peer's message lands while the network's is at the port: the call ends with the
  // port's bytes and a reduction, not with the two messages back to back.
  EXPECT_NEAR(predict_time_us(Topology{{0, 0, 1, 1}}, args, schedules, profile),
              through_port + profile.cached.gamma_us_per_byte * double(bytes), 1e-6);
}

TEST(CostModel, StreamingFractionFollowsTheMeasuredCurve) {
  const StreamingCurve curve{{{size_t{8} << 20, 0.0}, {size_t{16} << 20, 0.25}, {size_t{64} << 20, 1.0}}};
  EXPECT_EQ(curve.fraction(0), 0.0);
  EXPECT_EQ(curve.fraction(size_t{4} << 20), 0.0);
  EXPECT_EQ(curve.fraction(size_t{8} << 20), 0.0);
  EXPECT_DOUBLE_EQ(curve.fraction(size_t{16} << 20), 0.25);
  EXPECT_DOUBLE_EQ(curve.fraction(size_t{32} << 20), 0.625);  // halfway from 16 to 64 MiB in log2
  EXPECT_EQ(curve.fraction(size_t{1} << 30), 1.0);
  EXPECT_EQ(StreamingCurve{}.fraction(size_t{1} << 30), 0.0);

  // Transfers move that share of the way from cached to streaming; reductions and copies the share
  // of their own curve.
  CostProfile profile = example_profile();
  profile.streaming.gamma_us_per_byte = 3 * profile.cached.gamma_us_per_byte;
  profile.streaming.copy_us_per_byte = 2 * profile.cached.copy_us_per_byte;
  profile.streaming.intra_node.large_beta_us_per_byte = 2 * profile.cached.intra_node.large_beta_us_per_byte;
  profile.streaming_curve = curve;
  profile.kernel_streaming_curve = {{{size_t{8} << 20, 0.0}, {size_t{32} << 20, 0.5}}};
  const RegimeCost costs = profile.regime(size_t{32} << 20);
  EXPECT_DOUBLE_EQ(costs.intra_node.large_beta_us_per_byte,
                   profile.cached.intra_node.large_beta_us_per_byte * (1 + 0.625));
  EXPECT_DOUBLE_EQ(costs.gamma_us_per_byte, profile.cached.gamma_us_per_byte * (1 + 2 * 0.5));
  EXPECT_DOUBLE_EQ(costs.copy_us_per_byte, profile.cached.copy_us_per_byte * (1 + 0.5));
}

// Calls among a larger working set: every footprint counts as at least the working set, and the
// curve beyond it is the same.
TEST(CostModel, AWorkingSetRaisesEveryFootprintToItsOwn) {
  const StreamingCurve curve{{{size_t{8} << 20, 0.0}, {size_t{16} << 20, 0.25}, {size_t{64} << 20, 1.0}}};
  for (size_t working_set : {size_t{0}, size_t{4} << 20, size_t{12} << 20, size_t{32} << 20, size_t{1} << 30}) {
    const StreamingCurve raised = curve.at_least(working_set);
    for (size_t footprint : {size_t{0}, size_t{1} << 20, size_t{8} << 20, size_t{10} << 20, size_t{16} << 20,
                             size_t{40} << 20, size_t{64} << 20, size_t{2} << 30})
      EXPECT_NEAR(raised.fraction(footprint), curve.fraction(std::max(footprint, working_set)), 1e-12)
          << working_set << " " << footprint;
  }
  CostProfile profile = example_profile();
  profile.streaming.copy_us_per_byte = 2 * profile.cached.copy_us_per_byte;
  profile.streaming_curve = profile.kernel_streaming_curve = curve;
  const CostProfile within = profile.within_working_set(size_t{64} << 20);
  EXPECT_DOUBLE_EQ(within.regime(1024).copy_us_per_byte, profile.streaming.copy_us_per_byte);
  EXPECT_DOUBLE_EQ(profile.regime(1024).copy_us_per_byte, profile.cached.copy_us_per_byte);
}

// The calibration's curve: per-byte time of each exchange placed between the smallest exchange's
// (0) and the largest's (1), made monotone by pooling points that fall, not by a running maximum.
TEST(CostModel, StreamingCurveIsTheClosestMonotoneFitOfTheExchanges) {
  std::vector<P2pPoint> exchanges;
  const auto exchange = [&](size_t mib, double us_per_byte) {
    exchanges.push_back({0, 1, mib << 20, us_per_byte * double(mib << 20), 0});
  };
  // cached 1e-4 us/B, streaming 3e-4; the 4 MiB exchange was slow (fraction 0.9), 8 and 16 MiB not.
  exchange(1, 1e-4);
  exchange(4, 2.8e-4);
  exchange(8, 1.2e-4);
  exchange(16, 1.3e-4);
  exchange(32, 3e-4);
  exchange(2, 1e-4);
  exchanges.push_back({0, 2, size_t{4} << 20, 1.0, 0});  // another peer's point: ignored
  const StreamingCurve curve = measure_streaming_curve(exchanges, 1, true);
  ASSERT_EQ(curve.points.size(), 6u);
  const double pooled = (0.9 + 0.1 + 0.15) / 3;
  const std::vector<std::pair<size_t, double>> expected{{size_t{4} << 20, 0.0},     {size_t{8} << 20, 0.0},
                                                        {size_t{16} << 20, pooled}, {size_t{32} << 20, pooled},
                                                        {size_t{64} << 20, pooled}, {size_t{128} << 20, 1.0}};
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(curve.points[i].first, expected[i].first) << i;  // footprint: 4 x bytes on one node
    EXPECT_NEAR(curve.points[i].second, expected[i].second, 1e-12) << i;
  }
  // Two ranks on two nodes: each node holds what its rank sends and receives.
  EXPECT_EQ(measure_streaming_curve(exchanges, 1, false).points[0].first, size_t{2} << 20);
}

TEST(CostModel, SharingCostsFollowAMoveThatLastsNotOneOddReading) {
  CostProfile profile;
  profile.cached.shared_write_us_per_byte = 0.05e-3;
  profile.cached.dirty_read_us_per_byte = 0.02e-3;
  SharingCostTracker tracker(profile);
  tracker.add_reading(0.30e-3, 0.15e-3, profile);  // one odd reading
  EXPECT_DOUBLE_EQ(profile.cached.shared_write_us_per_byte, 0.05e-3);
  EXPECT_DOUBLE_EQ(profile.cached.dirty_read_us_per_byte, 0.02e-3);
  tracker.add_reading(0.06e-3, 0.03e-3, profile);  // back to normal: the median of 0.05, 0.30, 0.06
  EXPECT_DOUBLE_EQ(profile.cached.shared_write_us_per_byte, 0.06e-3);
  tracker.add_reading(0.40e-3, 0.20e-3, profile);  // the cores moved: two high readings of the last three
  tracker.add_reading(0.42e-3, 0.21e-3, profile);
  EXPECT_DOUBLE_EQ(profile.cached.shared_write_us_per_byte, 0.40e-3);
  EXPECT_DOUBLE_EQ(profile.cached.dirty_read_us_per_byte, 0.20e-3);
}

// Found by tests/fuzz/fuzz_profile: a byte count that is a number but not a whole one of at least 0
// (a footprint of 18446744073709551615.17, protocol_bytes of 1e300 or -1.5) went through nlohmann's
// conversion to size_t, which is undefined behaviour.
TEST(CostModel, ProfileReadsBackItsByteCountsAndRefusesOtherNumbers) {
  CostProfile written = example_profile();
  written.streaming_curve = {{{size_t{16} << 20, 0.0}, {size_t{32} << 20, 1.0}}};
  written.cached.intra_node.protocol_bytes = 512;
  const nlohmann::json profile = nlohmann::json::parse(profile_to_json(written));
  const CostProfile read = profile_from_json(profile.dump());
  EXPECT_EQ(read.streaming_curve.points, written.streaming_curve.points);
  EXPECT_EQ(read.cached.intra_node.protocol_bytes, 512u);

  for (const char* footprint : {"18446744073709551615.17", "1e300", "-1", "16777216.5", "\"16M\""}) {
    nlohmann::json bad = profile;
    bad["streaming_curve"][0][0] = nlohmann::json::parse(footprint);
    EXPECT_THROW(profile_from_json(bad.dump()), UsageError) << footprint;
  }
  for (const char* bytes : {"1e300", "-1.5", "512.0"}) {
    nlohmann::json bad = profile;
    bad["cached"]["intra_node"]["protocol_bytes"] = nlohmann::json::parse(bytes);
    EXPECT_THROW(profile_from_json(bad.dump()), UsageError) << bytes;
  }
  EXPECT_EQ(read.host_ports.ports, written.host_ports.ports);
  for (const char* ports : {"0", "65", "1.5", "\"2\"", "{}"}) {
    nlohmann::json bad = profile;
    bad["host_ports"]["ports"] = nlohmann::json::parse(ports);
    EXPECT_THROW(profile_from_json(bad.dump()), UsageError) << ports;
  }
  // A profile fitted before the ports were measured: one port per host, as fast as one flow.
  nlohmann::json older = profile;
  older.erase("host_ports");
  const CostProfile defaulted = profile_from_json(older.dump());
  EXPECT_EQ(defaulted.host_ports.ports, 1);
  EXPECT_EQ(defaulted.host_ports.us_per_byte, written.cached.inter_node.beta_us_per_byte);
  nlohmann::json not_a_point = profile;
  not_a_point["kernel_streaming_curve"] = nlohmann::json::parse("[[1, 0.5, 7]]");
  EXPECT_THROW(profile_from_json(not_a_point.dump()), UsageError);
}

}  // namespace
}  // namespace cclab
