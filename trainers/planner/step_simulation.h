// The planner's simulation of one training step (DESIGN 3.10): every rank's compute and
// communication as tasks with dependencies, run against lanes and ports, as the collectives'
// simulator runs a Schedule against the alpha-beta costs.
//
// A lane is a rank's thread (compute) or its communication progress: its tasks run one at a time,
// in the order they were added (program order). A port is a shared resource taken in time order
// (a host's network port, a server's receive side, a core that ranks take turns on): a task waits
// until it is free. A task starts when its dependencies have finished, it is at the head of every
// lane it uses, and its ports are free; the simulation always starts next the task that can start
// earliest (event order), so the ports are handed out in time order. Blocking calls (a
// tensor-parallel allreduce) take the compute lane and the communication lane of every member at
// once; overlapped ones (DDP buckets) take only the communication lanes.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace cclab::train {

class StepSimulation {
 public:
  enum class Kind { compute, comm };
  using TaskId = size_t;

  /// `ranks` ranks, each with a compute lane and a communication lane.
  explicit StepSimulation(size_t ranks);

  /// A new shared port; returns its id.
  size_t add_port();

  /// `rank`'s computation from now on takes `cores` (ids of add_port) while it runs: ranks that
  /// outnumber a node's cores take turns on them. Blocking calls do not take them (a waiting thread
  /// yields its core).
  void run_on(size_t rank, std::vector<size_t> cores);
  /// Computation of `seconds` on `rank`'s thread, after `after`.
  TaskId compute(size_t rank, double seconds, std::vector<TaskId> after = {});
  /// A collective of `seconds` over `members`. Blocking: the members' threads wait in it (compute
  /// lanes taken too); otherwise it progresses beside their computation.
  TaskId collective(const std::vector<size_t>& members, double seconds, bool blocking, std::vector<TaskId> after = {});
  /// A message from `from` to `to` of `seconds` on the wire, after `after`; it takes `ports` (ids of
  /// add_port) while in flight and no lane (posted early, progressed by the transport).
  TaskId message(size_t from, size_t to, double seconds, std::vector<TaskId> after = {},
                 std::vector<size_t> ports = {});

  /// `task` also waits for `on` (for graphs whose edges point both ways between ranks, as a pipeline's).
  void depend(TaskId task, TaskId on);

  /// Runs every task; throws Error if some can never start (a dependency cycle).
  void run();

  double finish(TaskId task) const { return tasks_.at(task).finish; }
  /// The step's end: the latest finish of any task.
  double step_seconds() const;
  /// Seconds `rank`'s thread computed, and spent in communication that did not overlap its computation
  /// (blocking calls, and overlapped ones after its last computation).
  double compute_seconds(size_t rank) const;
  double exposed_comm_seconds(size_t rank) const;
  /// The rank whose work ends last (the critical rank whose split the plan reports).
  size_t slowest_rank() const;

 private:
  struct Task {
    Kind kind = Kind::compute;
    double seconds = 0;
    std::vector<TaskId> after;
    std::vector<size_t> lanes, ports;
    std::vector<size_t> ranks;  // whose time it is
    double start = -1, finish = -1;
  };
  TaskId add(Task task);
  void check_ports(const std::vector<size_t>& ports) const;

  size_t ranks_;
  std::vector<Task> tasks_;
  std::vector<std::vector<TaskId>> lane_queue_;  // per lane: tasks in program order
  std::vector<std::vector<size_t>> cores_;       // per rank: the ports its computation takes
  size_t ports_ = 0;
  bool ran_ = false;
};

}  // namespace cclab::train
