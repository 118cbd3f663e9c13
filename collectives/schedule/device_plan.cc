#include "cclab/device_plan.h"

#include <algorithm>
#include <deque>
#include <map>
#include <numeric>
#include <string>
#include <tuple>

#include "cclab/error.h"

namespace cclab {
namespace {

bool is_message(const Step& step) { return step.kind == StepKind::send || step.kind == StepKind::recv; }

std::string describe(int rank, uint32_t step, const Schedule& schedule) {
  const Step& s = schedule.steps[step];
  const char* kind = s.kind == StepKind::send ? "send" : s.kind == StepKind::recv ? "recv" : "local step";
  std::string text = "rank " + std::to_string(rank) + " step " + std::to_string(step) + " (" + kind;
  if (is_message(s)) text += (s.kind == StepKind::send ? " to " : " from ") + std::to_string(s.peer) +
                             ", tag " + std::to_string(s.tag);
  return text + ")";
}

// Every step of every rank is a node; a matched send and receive share one (they happen together).
struct Nodes {
  std::vector<size_t> first;  // node of (rank r, step i) = of_step[first[r] + i]
  std::vector<size_t> of_step;
  size_t count = 0;
  size_t at(int rank, uint32_t step) const { return of_step[first[size_t(rank)] + step]; }
};

Nodes match_messages(const std::vector<Schedule>& schedules) {
  Nodes nodes;
  size_t total = 0;
  for (const Schedule& schedule : schedules) {
    nodes.first.push_back(total);
    total += schedule.steps.size();
  }
  nodes.of_step.assign(total, SIZE_MAX);
  // Sends per (sender, receiver, tag) in step order; the n-th receive of the same key matches the
  // n-th send, as the host transports match them.
  std::map<std::tuple<int, int, uint32_t>, std::deque<uint32_t>> sends;
  for (int r = 0; r < int(schedules.size()); ++r)
    for (uint32_t i = 0; i < schedules[size_t(r)].steps.size(); ++i) {
      const Step& step = schedules[size_t(r)].steps[i];
      if (step.kind == StepKind::send) sends[{r, step.peer, step.tag}].push_back(i);
    }
  for (int r = 0; r < int(schedules.size()); ++r)
    for (uint32_t i = 0; i < schedules[size_t(r)].steps.size(); ++i) {
      const Step& step = schedules[size_t(r)].steps[i];
      if (step.kind == StepKind::send) continue;
      const size_t node = nodes.count++;
      nodes.of_step[nodes.first[size_t(r)] + i] = node;
      if (step.kind != StepKind::recv) continue;
      if (step.peer < 0 || step.peer >= int(schedules.size()))
        throw Error("device plan: " + describe(r, i, schedules[size_t(r)]) + " names no rank of the job");
      auto found = sends.find({step.peer, r, step.tag});
      if (found == sends.end() || found->second.empty())
        throw Error("device plan: " + describe(r, i, schedules[size_t(r)]) + " has no matching send");
      nodes.of_step[nodes.first[size_t(step.peer)] + found->second.front()] = node;
      found->second.pop_front();
    }
  for (const auto& [key, unmatched] : sends)
    if (!unmatched.empty()) {
      const int sender = std::get<0>(key);
      throw Error("device plan: " + describe(sender, unmatched.front(), schedules[size_t(sender)]) +
                  " has no matching receive");
    }
  return nodes;
}

// The position of every node: for a message the group it is issued in (0, 1, ...), for a local step
// the group it runs after (-1: before the first). A message comes one group after everything it
// depends on; a local step may share the position of its dependencies. The longest path over the
// dependency graph, in topological order; a cycle means no order of groups exists.
std::vector<long> positions(const std::vector<Schedule>& schedules, const Nodes& nodes) {
  std::vector<bool> message(nodes.count, false);
  std::vector<std::vector<size_t>> dependents(nodes.count);
  std::vector<size_t> waiting(nodes.count, 0);
  for (int r = 0; r < int(schedules.size()); ++r)
    for (uint32_t i = 0; i < schedules[size_t(r)].steps.size(); ++i) {
      const Step& step = schedules[size_t(r)].steps[i];
      const size_t node = nodes.at(r, i);
      message[node] = is_message(step);
      for (uint32_t dep : step.deps) {
        if (dep >= i) throw Error("device plan: " + describe(r, i, schedules[size_t(r)]) + " depends on a later step");
        dependents[nodes.at(r, dep)].push_back(node);
        ++waiting[node];
      }
    }
  std::vector<long> position(nodes.count, -1);
  std::vector<size_t> ready;
  for (size_t node = 0; node < nodes.count; ++node)
    if (waiting[node] == 0) ready.push_back(node);
  size_t placed = 0;
  while (!ready.empty()) {
    const size_t node = ready.back();
    ready.pop_back();
    ++placed;
    if (message[node]) position[node] = std::max(position[node], 0L);
    for (size_t next : dependents[node]) {
      position[next] = std::max(position[next], position[node] + (message[next] ? 1 : 0));
      if (--waiting[next] == 0) ready.push_back(next);
    }
  }
  if (placed != nodes.count) {
    for (int r = 0; r < int(schedules.size()); ++r)
      for (uint32_t i = 0; i < schedules[size_t(r)].steps.size(); ++i)
        if (waiting[nodes.at(r, i)] != 0)
          throw Error("device plan: the messages cannot be ordered into groups (their dependencies form a cycle), "
                      "e.g. at " + describe(r, i, schedules[size_t(r)]));
  }
  return position;
}

}  // namespace

Schedule device_schedule(const Algorithm& algorithm, const Topology& topology, int rank, const CollectiveArgs& args) {
  return through_transport(algorithm.build(topology, rank, args));
}

std::vector<DevicePlan> compile_device_plans(const std::vector<Schedule>& schedules) {
  for (const Schedule& schedule : schedules)
    if (schedule.reads_peers())
      throw Error("device plan: a schedule reads peers' memory; pass it through through_transport() first");
  const Nodes nodes = match_messages(schedules);
  const std::vector<long> position = positions(schedules, nodes);
  std::vector<DevicePlan> plans(schedules.size());
  for (int r = 0; r < int(schedules.size()); ++r) {
    const Schedule& schedule = schedules[size_t(r)];
    DevicePlan& plan = plans[size_t(r)];
    for (uint32_t i = 0; i < schedule.steps.size(); ++i) {  // step order keeps local dependencies in order
      const long at = position[nodes.at(r, i)];
      if (at >= long(plan.groups.size())) plan.groups.resize(size_t(at) + 1);
      if (is_message(schedule.steps[i])) plan.groups[size_t(at)].messages.push_back(i);
      else if (at < 0) plan.before.push_back(i);
      else plan.groups[size_t(at)].after.push_back(i);
    }
    // Within a group each pair's messages in tag order, the same on both sides.
    for (DevicePlan::Group& group : plan.groups)
      std::sort(group.messages.begin(), group.messages.end(), [&](uint32_t x, uint32_t y) {
        const Step &a = schedule.steps[x], &b = schedule.steps[y];
        return std::tie(a.peer, a.kind, a.tag, x) < std::tie(b.peer, b.kind, b.tag, y);
      });
  }
  return plans;
}

Schedule ordered_schedule(const Schedule& schedule, const DevicePlan& plan) {
  Schedule ordered;
  ordered.scratch_count = schedule.scratch_count;
  std::vector<uint32_t> frontier;  // what the next step on the stream waits for
  std::map<std::pair<int, StepKind>, uint32_t> sequence;  // messages so far per (peer, direction)
  auto add_local = [&](uint32_t i) {
    Step step = schedule.steps[i];
    step.deps = frontier;
    frontier = {ordered.add(std::move(step))};
  };
  for (uint32_t i : plan.before) add_local(i);
  for (const DevicePlan::Group& group : plan.groups) {
    std::vector<uint32_t> issued;
    for (uint32_t i : group.messages) {
      Step step = schedule.steps[i];
      step.tag = sequence[{step.peer, step.kind}]++;  // NCCL matches each pair's messages in order
      step.deps = frontier;
      issued.push_back(ordered.add(std::move(step)));
    }
    if (!issued.empty()) frontier = issued;
    for (uint32_t i : group.after) add_local(i);
  }
  return ordered;
}

}  // namespace cclab
