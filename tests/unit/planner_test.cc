// The planner's pieces alone: the layer-times file and its reader, the step simulation, and plans for
// a described cluster (deterministic, every strategy predicted).
#include "planner/planner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>

#include "cclab/error.h"
#include "layer_times.h"
#include "planner/plan_run.h"
#include "planner/step_simulation.h"

namespace cclab::train {
namespace {

// Times for every layer of `plan`, a millisecond forward and two backward each.
LayerTimes made_up_times(const ModelPlan& plan, const std::string& model, size_t batch) {
  LayerTimes times;
  times.model = model;
  times.batch = batch;
  times.threads = 1;
  times.steps = 5;
  times.update_s = 1e-4;
  times.data_s = 1e-4;
  times.host = "test";
  times.cpu = "test";
  for (const LayerConfig& layer : plan.layers)
    times.layers.push_back({layer.name(), 1e-3, 2e-3, layer.parameter_count(), layer.output().elements()});
  return times;
}

TEST(LayerTimesFile, RoundTripKeepsEveryField) {
  const ModelPlan plan = plan_model("lenet5", {1, 28, 28});
  LayerTimes times = made_up_times(plan, "lenet5", 64);
  times.layers[3].forward_s = 0.000123456789;
  const LayerTimes back = layer_times_from_json(layer_times_to_json(times));
  EXPECT_EQ(back.model, "lenet5");
  EXPECT_EQ(back.batch, 64u);
  EXPECT_EQ(back.steps, 5u);
  ASSERT_EQ(back.layers.size(), plan.layers.size());
  for (size_t i = 0; i < plan.layers.size(); ++i) {
    EXPECT_EQ(back.layers[i].name, times.layers[i].name);
    EXPECT_EQ(back.layers[i].forward_s, times.layers[i].forward_s);
    EXPECT_EQ(back.layers[i].backward_s, times.layers[i].backward_s);
    EXPECT_EQ(back.layers[i].parameters, times.layers[i].parameters);
  }
  EXPECT_NO_THROW(check_layer_times_match(back, plan, "lenet5", 64, 1, "f"));
  EXPECT_THROW(check_layer_times_match(back, plan, "lenet5", 128, 1, "f"), UsageError);
  EXPECT_THROW(check_layer_times_match(back, plan, "lenet5", 64, 2, "f"), UsageError);
  EXPECT_THROW(check_layer_times_match(back, plan_model("convnet", {1, 28, 28}), "lenet5", 64, 1, "f"), UsageError);
}

TEST(LayerTimesFile, ReaderRefusesWhatCclabNeverWrites) {
  const ModelPlan plan = plan_model("lenet5", {1, 28, 28});
  const std::string good = layer_times_to_json(made_up_times(plan, "lenet5", 64));
  const auto replaced = [&](const std::string& from, const std::string& to) {
    std::string text = good;
    text.replace(text.find(from), from.size(), to);
    return text;
  };
  EXPECT_NO_THROW(layer_times_from_json(good));
  EXPECT_THROW(layer_times_from_json("not json"), UsageError);
  EXPECT_THROW(layer_times_from_json("[1, 2]"), UsageError);
  EXPECT_THROW(layer_times_from_json(replaced("cclab.layers/1", "cclab.layers/9")), UsageError);
  EXPECT_THROW(layer_times_from_json(replaced("\"forward_s\": 0.001", "\"forward_s\": -1")), UsageError);
  EXPECT_THROW(layer_times_from_json(replaced("\"forward_s\": 0.001", "\"forward_s\": 1e300")), UsageError);
  EXPECT_THROW(layer_times_from_json(replaced("\"batch\": 64", "\"batch\": 0")), UsageError);
  EXPECT_THROW(layer_times_from_json(replaced("\"batch\": 64", "\"batch\": \"64\"")), UsageError);
  EXPECT_THROW(layer_times_from_json(replaced("\"threads\": 1", "\"thread\": 1")), UsageError);
  EXPECT_THROW(layer_times_from_json(std::string(2 << 20, ' ')), UsageError);
  EXPECT_THROW(load_layer_times("/nonexistent/layers.json"), UsageError);
}

TEST(StepSimulation, BlockingCollectiveWaitsForTheSlowestMemberAndOverlapHidesComm) {
  StepSimulation sim(2);
  const auto fast = sim.compute(0, 1.0);
  const auto slow = sim.compute(1, 3.0);
  sim.collective({0, 1}, 0.5, true, {fast, slow});
  sim.compute(0, 1.0);
  sim.run();
  EXPECT_DOUBLE_EQ(sim.step_seconds(), 4.5);
  EXPECT_DOUBLE_EQ(sim.compute_seconds(0), 2.0);
  EXPECT_DOUBLE_EQ(sim.exposed_comm_seconds(0), 0.5);
  EXPECT_EQ(sim.slowest_rank(), 0u);  // its last compute ends at 4.5

  StepSimulation overlapped(2);
  const auto first = overlapped.compute(0, 1.0);
  overlapped.compute(1, 1.0);
  overlapped.collective({0, 1}, 0.5, false, {first});
  overlapped.compute(0, 2.0);
  overlapped.run();
  EXPECT_DOUBLE_EQ(overlapped.step_seconds(), 3.0);
  EXPECT_DOUBLE_EQ(overlapped.exposed_comm_seconds(0), 0.0);
}

TEST(StepSimulation, PortsServeOneMessageAtATimeAndCyclesAreRefused) {
  StepSimulation sim(3);
  const size_t port = sim.add_port();
  const auto a = sim.message(0, 2, 1.0, {}, {port});
  const auto b = sim.message(1, 2, 1.0, {}, {port});
  sim.run();
  EXPECT_DOUBLE_EQ(std::max(sim.finish(a), sim.finish(b)), 2.0);

  StepSimulation cycle(2);
  const auto x = cycle.compute(0, 1.0);
  const auto y = cycle.compute(1, 1.0, {x});
  cycle.depend(x, y);
  EXPECT_THROW(cycle.run(), Error);
}

// The simulation's rule, searched the slow way: of the tasks whose dependencies are done and that
// head their lanes, start the one that can start earliest (the first added among equals).
struct ReferenceTask {
  double seconds;
  std::vector<size_t> after, lanes, ports;
};
std::vector<double> reference_starts(const std::vector<ReferenceTask>& tasks, size_t lanes, size_t ports) {
  std::vector<double> start(tasks.size(), -1), finish(tasks.size(), -1), lane_free(lanes, 0), port_free(ports, 0);
  std::vector<std::vector<size_t>> lane_order(lanes);
  for (size_t id = 0; id < tasks.size(); ++id)
    for (size_t lane : tasks[id].lanes) lane_order[lane].push_back(id);
  std::vector<size_t> head(lanes, 0);
  for (size_t round = 0; round < tasks.size(); ++round) {
    size_t best = tasks.size();
    double best_start = 0;
    for (size_t id = 0; id < tasks.size(); ++id) {
      const ReferenceTask& task = tasks[id];
      bool ready = start[id] < 0;
      double at = 0;
      for (size_t dependency : task.after) {
        ready = ready && finish[dependency] >= 0;
        at = std::max(at, finish[dependency]);
      }
      for (size_t lane : task.lanes) {
        ready = ready && lane_order[lane][head[lane]] == id;
        at = std::max(at, lane_free[lane]);
      }
      for (size_t port : task.ports) at = std::max(at, port_free[port]);
      if (ready && (best == tasks.size() || at < best_start)) {
        best = id;
        best_start = at;
      }
    }
    start[best] = best_start;
    finish[best] = best_start + tasks[best].seconds;
    for (size_t lane : tasks[best].lanes) {
      lane_free[lane] = finish[best];
      ++head[lane];
    }
    for (size_t port : tasks[best].ports) port_free[port] = finish[best];
  }
  return start;
}

// Random steps with many equal times and crowded ports (messages on up to three of them, ranks on
// shared cores) start every task when the slow search does.
TEST(StepSimulation, StartsEveryTaskWhenTheSlowSearchDoes) {
  std::mt19937 random(7);
  const auto pick = [&](size_t n) { return size_t(std::uniform_int_distribution<size_t>(0, n - 1)(random)); };
  for (int trial = 0; trial < 200; ++trial) {
    const size_t ranks = 2 + pick(4), extra_ports = 1 + pick(3);
    StepSimulation sim(ranks);
    std::vector<size_t> ports;
    for (size_t p = 0; p < extra_ports; ++p) ports.push_back(sim.add_port());
    const size_t core = sim.add_port();
    std::vector<std::vector<size_t>> cores(ranks);
    for (size_t rank = 0; rank < ranks; rank += 2) cores[rank] = {core};
    for (size_t rank = 0; rank < ranks; ++rank) sim.run_on(rank, cores[rank]);
    std::vector<ReferenceTask> tasks;
    for (size_t id = 0; id < 40; ++id) {
      ReferenceTask task{0.25 * double(1 + pick(4)), {}, {}, {}};
      for (size_t k = pick(3); id > 0 && k > 0; --k) task.after.push_back(pick(id));
      const size_t kind = pick(3), rank = pick(ranks);
      if (kind == 0) {
        task.lanes = {2 * rank};
        task.ports = cores[rank];
        sim.compute(rank, task.seconds, task.after);
      } else if (kind == 1) {
        const bool blocking = pick(2) == 0;
        std::vector<size_t> members{rank, (rank + 1) % ranks};
        for (size_t member : members) {
          if (blocking) task.lanes.push_back(2 * member);
          task.lanes.push_back(2 * member + 1);
        }
        sim.collective(members, task.seconds, blocking, task.after);
      } else {
        for (size_t p = 0; p < extra_ports; ++p)
          if (pick(2) == 0) task.ports.push_back(ports[p]);
        sim.message(rank, (rank + 1) % ranks, task.seconds, task.after, task.ports);
      }
      tasks.push_back(task);
    }
    sim.run();
    const std::vector<double> expected = reference_starts(tasks, 2 * ranks, extra_ports + 1);
    for (size_t id = 0; id < tasks.size(); ++id)
      ASSERT_DOUBLE_EQ(sim.finish(id) - tasks[id].seconds, expected[id]) << "trial " << trial << " task " << id;
  }
}

// LeNet-5 at batch 64 with made-up layer times, planned for the described cluster.
PlanInputs lenet5_on(const std::string& cluster) {
  PlanInputs inputs;
  inputs.model = plan_model("lenet5", {1, 28, 28});
  inputs.layers = made_up_times(inputs.model, "lenet5", 64);
  inputs.batch = 64;
  inputs.cluster = parse_cluster(cluster);
  return inputs;
}

TEST(Planner, WhatIfPlansAreDeterministicAndCoverEveryMode) {
  PlanInputs inputs = lenet5_on(
      "nodes=2,ranks-per-node=2,intra-alpha-us=0.5,intra-gbps=10,inter-alpha-us=5,inter-gbps=1.25,compute=2");
  const std::vector<Strategy> strategies = enumerate_strategies(inputs.model, inputs.layers, 4, 64);
  const std::vector<StrategyPrediction> first = rank_strategies(inputs, strategies);
  const std::vector<StrategyPrediction> second = rank_strategies(inputs, strategies);
  ASSERT_EQ(first.size(), strategies.size());
  std::set<std::string> modes;
  for (size_t i = 0; i < first.size(); ++i) {
    modes.insert(first[i].strategy.mode);
    EXPECT_EQ(first[i].strategy.name(), second[i].strategy.name());
    EXPECT_EQ(first[i].total_s, second[i].total_s);
    EXPECT_GT(first[i].total_s, 0);
    EXPECT_NEAR(first[i].compute_s + first[i].comm_s + first[i].idle_s, first[i].total_s, 1e-12);
    if (i > 0) {
      EXPECT_LE(first[i - 1].total_s, first[i].total_s);
    }
  }
  EXPECT_EQ(modes, (std::set<std::string>{"data", "tensor", "pipeline", "hybrid", "ps"}));
  EXPECT_THROW(enumerate_strategies(inputs.model, inputs.layers, 4, 3), UsageError);
  EXPECT_THROW(parse_cluster("nodes=2,ranks-per-node=2"), UsageError);
  EXPECT_THROW(parse_cluster("nodes=0,ranks-per-node=2,intra-alpha-us=1,intra-gbps=1,inter-alpha-us=1,inter-gbps=1"),
               UsageError);
}

// Ranks placed on one core compute one after another, and a placement covers every core; over its
// placements a prediction meets every pair of 3 ranks that can share one of 2 cores.
TEST(Planner, RanksSharingCoresArePlacedInTurnOnEveryCore) {
  ClusterShape cluster = lenet5_on(
      "nodes=1,ranks-per-node=3,intra-alpha-us=0.5,intra-gbps=10,inter-alpha-us=5,inter-gbps=1.25").cluster;
  EXPECT_EQ(cluster.core_deals(1), 1u);
  EXPECT_TRUE(cluster.cores_of(0, 1, 0).empty());
  cluster.cores_per_node = 3;
  EXPECT_FALSE(cluster.ranks_share_cores(1));
  EXPECT_TRUE(cluster.ranks_share_cores(2));
  cluster.cores_per_node = 2;
  ASSERT_EQ(cluster.core_deals(1), 3u);
  std::set<std::set<size_t>> pairs;
  for (size_t deal = 0; deal < 3; ++deal) {
    std::map<size_t, std::set<size_t>> ranks_on;
    for (size_t rank = 0; rank < 3; ++rank) {
      const std::vector<size_t> cores = cluster.cores_of(rank, 1, deal);
      ASSERT_EQ(cores.size(), 1u);
      ranks_on[cores.front()].insert(rank);
    }
    ASSERT_EQ(ranks_on.size(), 2u);
    for (const auto& [core, ranks] : ranks_on)
      if (ranks.size() == 2) pairs.insert(ranks);
  }
  EXPECT_EQ(pairs, (std::set<std::set<size_t>>{{0, 1}, {0, 2}, {1, 2}}));
  EXPECT_EQ(cluster.cores_of(0, 2, 0), (std::vector<size_t>{0}));  // 6 threads: 3 per core
  cluster.cores_per_node = 4;
  EXPECT_EQ(cluster.cores_of(1, 2, 0), (std::vector<size_t>{1, 2}));
}

TEST(StepSimulation, RanksOnOneCoreComputeInTurn) {
  StepSimulation sim(3);
  const size_t core = sim.add_port();
  sim.run_on(0, {core});
  sim.run_on(2, {core});
  const auto a = sim.compute(0, 1.0);
  const auto b = sim.compute(1, 1.0);
  const auto c = sim.compute(2, 1.0);
  sim.collective({0, 1, 2}, 0.5, true, {a, b, c});
  sim.run();
  EXPECT_DOUBLE_EQ(sim.step_seconds(), 2.5);
  EXPECT_DOUBLE_EQ(sim.compute_seconds(2), 1.0);

  StepSimulation waiting(2);  // the compute ready first takes the core first
  const size_t shared = waiting.add_port();
  waiting.run_on(0, {shared});
  waiting.run_on(1, {shared});
  const auto early = waiting.compute(1, 0.5);
  const auto late = waiting.compute(0, 2.0);
  waiting.collective({0, 1}, 0.25, true, {early, late});
  waiting.run();
  EXPECT_DOUBLE_EQ(waiting.step_seconds(), 2.75);
}

// Data parallelism keeps every rank computing, so on 3 ranks and 2 cores two ranks' compute runs one
// after the other in every placement: the step grows by about one rank's compute, the bytes not at all.
TEST(Planner, RanksSharingCoresAddTheirCoreMatesCompute) {
  PlanInputs inputs = lenet5_on(
      "nodes=1,ranks-per-node=3,intra-alpha-us=0.5,intra-gbps=10,inter-alpha-us=5,inter-gbps=1.25,compute=2");
  const std::vector<Strategy> strategies = enumerate_strategies(inputs.model, inputs.layers, 3, 64);
  const std::vector<StrategyPrediction> own_cores = rank_strategies(inputs, strategies);
  inputs.cluster.cores_per_node = 2;
  const std::vector<StrategyPrediction> shared = rank_strategies(inputs, strategies);
  for (const StrategyPrediction& mine : own_cores) {
    const auto same = std::find_if(shared.begin(), shared.end(), [&](const StrategyPrediction& other) {
      return other.strategy.train_arguments() == mine.strategy.train_arguments();
    });
    ASSERT_NE(same, shared.end());
    EXPECT_GT(same->total_s, mine.total_s) << mine.strategy.name();
    EXPECT_EQ(same->sent_bytes_total, mine.sent_bytes_total) << mine.strategy.name();
    EXPECT_EQ(same->memory_bytes, mine.memory_bytes) << mine.strategy.name();
    if (mine.strategy.mode == "data") {
      EXPECT_NEAR(same->total_s - mine.total_s, mine.compute_s, 0.1 * mine.compute_s);
    }
  }
}

// A step's transfers and collectives find their data in cache only as far as the node's working set
// fits: where the ranks hold more than the profile's caches, even small calls pay streaming costs.
TEST(Planner, AStepsCallsAreCostedAmongItsWorkingSet) {
  PlanInputs inputs = lenet5_on(
      "nodes=1,ranks-per-node=2,intra-alpha-us=0.5,intra-gbps=10,inter-alpha-us=5,inter-gbps=1.25,compute=2");
  CostProfile& profile = inputs.cluster.profile;
  for (LinkCost* link : {&profile.streaming.intra_node, &profile.streaming.inter_node}) {
    link->beta_us_per_byte *= 4;
    link->large_beta_us_per_byte *= 4;
  }
  profile.streaming.gamma_us_per_byte *= 4;
  profile.streaming.copy_us_per_byte *= 4;
  Strategy data;
  data.mode = "data";
  data.grid = {2, 1, 1};
  const auto predicted_with_curve = [&](StreamingCurve curve) {
    profile.streaming_curve = profile.kernel_streaming_curve = curve;
    return predict_strategy(inputs, data);
  };
  const StrategyPrediction cached = predicted_with_curve({{{size_t{1} << 40, 0.0}}});
  const StrategyPrediction streaming = predicted_with_curve({{{1, 1.0}}});
  EXPECT_DOUBLE_EQ(cached.node_memory_bytes, 2 * cached.memory_bytes);  // both ranks hold the same
  const auto working_set = size_t(cached.node_memory_bytes);
  // The buckets are far smaller than half the working set: alone, they would be costed as cached.
  const StrategyPrediction among = predicted_with_curve({{{working_set / 2, 0.0}, {working_set, 1.0}}});
  EXPECT_GT(streaming.comm_s, cached.comm_s);
  EXPECT_DOUBLE_EQ(among.total_s, streaming.total_s);
  EXPECT_EQ(among.sent_bytes_total, cached.sent_bytes_total);
}

}  // namespace
}  // namespace cclab::train
