// The alpha-beta-gamma model: fitting recovers known parameters, and predicted times follow the
// textbook formulas where they exist.
#include <gtest/gtest.h>

#include "cclab/algorithm.h"
#include "cclab/cost_model.h"
#include "cclab/error.h"

namespace cclab {
namespace {

CostProfile example_profile() {
  CostProfile profile;
  profile.cached.intra_node = {0.5, 1.0 / 8e3};  // 0.5 us, 8 GB/s
  profile.cached.inter_node = {3.0, 1.0 / 2e3};  // 3 us, 2 GB/s
  profile.cached.gamma_us_per_byte = 1.0 / 20e3;
  profile.cached.copy_us_per_byte = 1.0 / 25e3;
  profile.streaming = profile.cached;
  profile.cache_bytes = size_t{1} << 40;  // one regime for these tests
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
  EXPECT_NEAR(fitted.beta_us_per_byte, truth.cached.intra_node.beta_us_per_byte, 0.05 * truth.cached.intra_node.beta_us_per_byte);
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

}  // namespace
}  // namespace cclab
