// Plans for running Schedules over NCCL point-to-point (DESIGN 3.8): each rank's steps become a
// sequence of groups (the ncclSend/ncclRecv calls of one ncclGroupStart/ncclGroupEnd) with local
// steps (reductions, copies) between them, all enqueued on one stream.
//
// NCCL has no tags: it matches each pair's messages in the order they are issued, and a group's
// calls make progress together while the stream runs groups one after another. So the plans of all
// ranks are compiled together: a send and the receive it matches in the Schedules (same pair and
// tag) land in the same group on both ranks, a step lands after every step it depends on (a message
// one group later than a message it depends on; a local step after the group of its last message),
// and within a group each pair's messages go in tag order on both sides. Every pair's messages are
// then issued in the same order on both ranks. Schedules whose dependencies, with each matched send
// and receive taken as one event, form a cycle cannot be ordered so and are refused.
//
// ordered_schedule() turns a plan back into a Schedule with NCCL's semantics spelled out (tags are
// each pair's message sequence numbers; every step of a group depends on the previous group and on
// the local steps before it; local steps run one after another), so the symbolic simulator proves
// the plans: outputs exact, no deadlock, the Schedule's bytes.
#pragma once

#include <cstdint>
#include <vector>

#include "cclab/algorithm.h"
#include "cclab/schedule.h"

namespace cclab {

/// One rank's plan: indices of its Schedule's steps, in the order the stream runs them.
struct DevicePlan {
  struct Group {
    std::vector<uint32_t> messages;  // sends and receives of one NCCL group, by (peer, tag, step)
    std::vector<uint32_t> after;     // local steps after the group completes, in order
  };
  std::vector<uint32_t> before;  // local steps before the first group
  std::vector<Group> groups;
};

/// Rank `rank`'s schedule of `algorithm` as a device runs it: GPUs here reach each other through
/// NCCL only, so peer reads become its sends and receives (through_transport).
Schedule device_schedule(const Algorithm& algorithm, const Topology& topology, int rank, const CollectiveArgs& args);

/// Compiles the plans of all ranks of one call (schedules[r] is rank r's). Throws Error naming
/// the steps when a send has no matching receive or the dependencies cannot be ordered into groups.
std::vector<DevicePlan> compile_device_plans(const std::vector<Schedule>& schedules);

/// The plan of rank `rank` as a Schedule with NCCL's semantics made explicit (see above).
Schedule ordered_schedule(const Schedule& schedule, const DevicePlan& plan);

}  // namespace cclab
