#include "planner/step_simulation.h"

#include <algorithm>
#include <functional>
#include <queue>
#include <tuple>
#include <utility>

#include "cclab/error.h"

namespace cclab::train {
namespace {

using Interval = std::pair<double, double>;

// The intervals merged where they overlap, sorted.
std::vector<Interval> merged(std::vector<Interval> intervals) {
  std::sort(intervals.begin(), intervals.end());
  std::vector<Interval> out;
  for (const Interval& interval : intervals) {
    if (interval.second <= interval.first) continue;
    if (!out.empty() && interval.first <= out.back().second)
      out.back().second = std::max(out.back().second, interval.second);
    else
      out.push_back(interval);
  }
  return out;
}

double length(const std::vector<Interval>& intervals) {
  double sum = 0;
  for (const Interval& interval : intervals) sum += interval.second - interval.first;
  return sum;
}

// Length of the part of `covered` (merged) that `cover` (merged) leaves uncovered.
double uncovered_length(const std::vector<Interval>& covered, const std::vector<Interval>& cover) {
  double overlap = 0;
  for (const Interval& a : covered)
    for (const Interval& b : cover) overlap += std::max(0.0, std::min(a.second, b.second) - std::max(a.first, b.first));
  return length(covered) - overlap;
}

}  // namespace

StepSimulation::StepSimulation(size_t ranks) : ranks_(ranks), lane_queue_(2 * ranks), cores_(ranks) {}

size_t StepSimulation::add_port() { return ports_++; }

void StepSimulation::check_ports(const std::vector<size_t>& ports) const {
  for (size_t port : ports)
    if (port >= ports_) throw Error("step simulation: no such port");
}

void StepSimulation::run_on(size_t rank, std::vector<size_t> cores) {
  check_ports(cores);
  cores_.at(rank) = std::move(cores);
}

StepSimulation::TaskId StepSimulation::add(Task task) {
  for (TaskId dependency : task.after)
    if (dependency >= tasks_.size()) throw Error("step simulation: a task depends on one not added yet");
  const TaskId id = tasks_.size();
  for (size_t lane : task.lanes) lane_queue_.at(lane).push_back(id);
  tasks_.push_back(std::move(task));
  return id;
}

StepSimulation::TaskId StepSimulation::compute(size_t rank, double seconds, std::vector<TaskId> after) {
  return add({Kind::compute, seconds, std::move(after), {2 * rank}, cores_.at(rank), {rank}});
}

StepSimulation::TaskId StepSimulation::collective(const std::vector<size_t>& members, double seconds, bool blocking,
                                                  std::vector<TaskId> after) {
  Task task{Kind::comm, seconds, std::move(after), {}, {}, members};
  for (size_t member : members) {
    if (blocking) task.lanes.push_back(2 * member);
    task.lanes.push_back(2 * member + 1);
  }
  return add(std::move(task));
}

StepSimulation::TaskId StepSimulation::message(size_t from, size_t to, double seconds, std::vector<TaskId> after,
                                               std::vector<size_t> ports) {
  check_ports(ports);
  return add({Kind::comm, seconds, std::move(after), {}, std::move(ports), {from, to}});
}

void StepSimulation::depend(TaskId task, TaskId on) {
  if (task >= tasks_.size() || on >= tasks_.size()) throw Error("step simulation: no such task");
  tasks_[task].after.push_back(on);
}

void StepSimulation::run() {
  std::vector<size_t> head(lane_queue_.size(), 0);
  std::vector<double> lane_free(lane_queue_.size(), 0), port_free(ports_, 0);
  const auto earliest_start = [&](const Task& task) {
    double start = 0;
    for (TaskId dependency : task.after) start = std::max(start, tasks_[dependency].finish);
    for (size_t lane : task.lanes) start = std::max(start, lane_free[lane]);
    for (size_t port : task.ports) start = std::max(start, port_free[port]);
    return start;
  };
  // A task is a candidate once its dependencies are done and it heads each of its lanes (a message
  // uses no lane). Each round starts the candidate that can start earliest, the first added among
  // equals. The queue holds a lower bound of each candidate's start. A candidate's start only grows
  // while it waits, and only because a port it needs got busier: one found later than its bound
  // waits on that port, in a list ordered by task, and the queue holds one entry for the whole list
  // (the port's free time and the list's first task, a bound for all of them). So a port that many
  // candidates wait for costs one entry per hand-over, not one per waiting candidate.
  std::vector<size_t> waiting_on(tasks_.size());
  std::vector<std::vector<TaskId>> dependents(tasks_.size());
  for (TaskId id = 0; id < tasks_.size(); ++id) {
    waiting_on[id] = tasks_[id].after.size();
    for (TaskId dependency : tasks_[id].after) dependents[dependency].push_back(id);
  }
  constexpr size_t kTask = 0;  // an entry's `port + 1`, or kTask for a candidate of its own
  using Entry = std::tuple<double, TaskId, size_t>;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> queue;
  std::vector<std::priority_queue<TaskId, std::vector<TaskId>, std::greater<>>> waiting(ports_);
  std::vector<Entry> port_entry(ports_);  // the live entry of each port's list (older ones are dropped)
  const auto enqueue_port = [&](size_t port) {
    port_entry[port] = Entry{port_free[port], waiting[port].top(), port + 1};
    queue.push(port_entry[port]);
  };
  const auto wait_for_port = [&](TaskId id, size_t port) {
    const bool first = waiting[port].empty() || id < waiting[port].top();
    waiting[port].push(id);
    if (first) enqueue_port(port);
  };
  const auto consider = [&](TaskId id) {
    if (waiting_on[id] > 0) return;
    for (size_t lane : tasks_[id].lanes)
      if (lane_queue_[lane][head[lane]] != id) return;
    queue.emplace(earliest_start(tasks_[id]), id, kTask);
  };
  for (TaskId id = 0; id < tasks_.size(); ++id) consider(id);
  for (size_t remaining = tasks_.size(); remaining > 0;) {
    if (queue.empty()) throw Error("step simulation: tasks wait on each other (a cycle)");
    const Entry entry = queue.top();
    queue.pop();
    const auto [bound, best, tag] = entry;
    if (tag != kTask) {
      const size_t port = tag - 1;
      if (entry != port_entry[port] || waiting[port].empty()) continue;
      if (port_free[port] > bound) {  // the port was handed over since
        enqueue_port(port);
        continue;
      }
      waiting[port].pop();
      if (!waiting[port].empty()) enqueue_port(port);
    }
    Task& task = tasks_[best];
    if (const double start = earliest_start(task); start > bound) {
      const auto busiest = std::max_element(task.ports.begin(), task.ports.end(),
                                            [&](size_t a, size_t b) { return port_free[a] < port_free[b]; });
      wait_for_port(best, *busiest);
      continue;
    }
    task.start = bound;
    task.finish = bound + task.seconds;
    --remaining;
    for (size_t port : task.ports) port_free[port] = task.finish;
    for (size_t lane : task.lanes) {
      lane_free[lane] = task.finish;
      if (++head[lane] < lane_queue_[lane].size()) consider(lane_queue_[lane][head[lane]]);
    }
    for (TaskId dependent : dependents[best])
      if (--waiting_on[dependent] == 0) consider(dependent);
  }
  ran_ = true;
}

double StepSimulation::step_seconds() const {
  double end = 0;
  for (const Task& task : tasks_) end = std::max(end, task.finish);
  return end;
}

double StepSimulation::compute_seconds(size_t rank) const {
  double sum = 0;
  for (const Task& task : tasks_)
    if (task.kind == Kind::compute && task.ranks.front() == rank) sum += task.seconds;
  return sum;
}

double StepSimulation::exposed_comm_seconds(size_t rank) const {
  std::vector<Interval> compute, comm;
  for (const Task& task : tasks_) {
    if (std::find(task.ranks.begin(), task.ranks.end(), rank) == task.ranks.end()) continue;
    (task.kind == Kind::compute ? compute : comm).push_back({task.start, task.finish});
  }
  return uncovered_length(merged(comm), merged(compute));
}

size_t StepSimulation::slowest_rank() const {
  std::vector<double> end(ranks_, 0);
  for (const Task& task : tasks_)
    for (size_t rank : task.ranks) end[rank] = std::max(end[rank], task.finish);
  // Ties go to the rank that computes most: its split is the one that sets the step.
  size_t slowest = 0;
  for (size_t rank = 1; rank < ranks_; ++rank)
    if (end[rank] > end[slowest] + 1e-12 ||
        (end[rank] > end[slowest] - 1e-12 && compute_seconds(rank) > compute_seconds(slowest)))
      slowest = rank;
  return slowest;
}

}  // namespace cclab::train
