// A process group: some of the job's ranks, with the collectives and point-to-point messages the
// parallel modes need between them (DESIGN 3.6). The data-parallel gradient allreduce, a tensor-
// parallel layer pair's allreduce and a pipeline boundary's sends each run in a group; the group
// counts its own traffic, so a mode that gives each phase its own group reads the bytes of every
// phase from the groups' counters (DESIGN 3.7 checks them).
//
// Collectives are our ring algorithms (f32, sum) on a GroupTransport, or the direct ones where the
// group reads its peers' memory: schedules are compiled once per (collective, count) and reused. Every member must make the same calls in the same order.
//
// Tags. The wire sequence of every message is (group id << 16 | n): n counts this group's
// collective calls (0 .. 0xFFFE, then wraps), and n = 0xFFFF marks a point-to-point message whose
// 24-bit `message` id the caller chooses (the same on both sides, distinct among the messages in
// flight between a pair). Groups that share a pair of ranks need distinct ids (1..255).
#pragma once

#include <map>
#include <memory>
#include <tuple>
#include <utility>
#include <vector>

#include "cclab/algorithm.h"
#include "cclab/group_transport.h"
#include "cclab/host_executor.h"

namespace cclab {
class Comm;
}

namespace cclab::train {

/// DESIGN 3.7's textbook volume of one call, bytes a rank sends: an allreduce of `count` floats
/// 2(n-1)/n x count x 4; an allgather or reduce-scatter of `count` floats per member (n-1) x count x 4.
/// The simulator's count (predicted_sent_bytes) differs from it by the chunk rounding only.
double textbook_sent_bytes(Collective collective, size_t count, int ranks);

/// Ranks 0 .. comm.size() - 1: the members of a group of the whole job.
std::vector<int> every_rank(const Comm& comm);

class ProcessGroup {
 public:
  /// `members`: global ranks in group-rank order, including this one. `id`: 1..255. `peers`: the
  /// Comm's PeerMemory when the group's collectives are to read peers' memory in place (the direct
  /// algorithms; the members must then be every rank of the Comm, in order); null for the rings.
  ProcessGroup(Comm& comm, std::vector<int> members, unsigned id, PeerMemory* peers = nullptr);
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const { return transport_.rank(); }
  int size() const { return transport_.size(); }
  const std::vector<int>& members() const { return transport_.members(); }
  /// The job's --timeout from now: every wait of this group ends by then or throws.
  Deadline deadline() const;

  /// In-place sum of `count` floats over the group.
  void allreduce(float* data, size_t count);
  /// `whole` (size() x block_count) gets every member's `block`, in group-rank order.
  void allgather(const float* block, float* whole, size_t block_count);
  /// `block` gets this member's block of the sum of every member's `whole` (size() x block_count).
  void reduce_scatter(const float* whole, float* block, size_t block_count);
  /// Starts an in-place sum and returns at once; poll it with test(), finish with wait(deadline()).
  std::unique_ptr<PendingCollective> start_allreduce(float* data, size_t count);
  /// Starts an in-place reduce-scatter of `whole` (size() x block_count floats): this member's block
  /// of `whole` gets the sum of that block over the group; its other blocks are left as they were.
  /// With `consume`, each element's last two operands go to it instead (offsets within the block),
  /// and the block holds partial sums (on two members, this member's own values).
  std::unique_ptr<PendingCollective> start_reduce_scatter(float* whole, size_t block_count, SumConsumer consume = {});
  /// Starts an in-place allgather: every member's block of `whole` (size() x block_count floats)
  /// is copied into the same block of every other member's `whole`.
  std::unique_ptr<PendingCollective> start_allgather(float* whole, size_t block_count);

  /// Bytes this member sends in one allreduce of `count` floats, allgather or reduce_scatter of
  /// `block_count` floats per member (the simulator's count of the same schedule).
  size_t predicted_sent_bytes(Collective collective, size_t count);

  /// Point-to-point with group rank `peer`.
  RequestPtr isend(int peer, const float* data, size_t count, uint32_t message);
  RequestPtr irecv(int peer, float* data, size_t count, uint32_t message);
  void wait(Request& request) { transport_.wait(request, deadline()); }
  /// Waits until `deadline` (a caller's own, for a wait inside a longer one that has a deadline).
  void wait(Request& request, Deadline deadline) { transport_.wait(request, deadline); }
  /// Moves the group's point-to-point messages forward once (their complete() does not): for a
  /// caller polling many messages; true if anything happened.
  bool progress() { return transport_.progress(); }

  /// Traffic with group rank `peer` through node-shared memory, counted in the whole job's meter too
  /// (TrafficMeter::count_direct_traffic).
  void count_direct_traffic(int peer, size_t bytes_sent, size_t bytes_received) {
    transport_.traffic().count_direct_traffic(peer, bytes_sent, bytes_received);
  }

  /// This member's side of the group's traffic so far, without what ran while not counting.
  struct Traffic {
    double bytes_sent = 0, bytes_received = 0, messages_sent = 0, messages_received = 0;
  };
  Traffic traffic() const;
  double bytes_sent() const { return traffic().bytes_sent; }
  double bytes_received() const { return traffic().bytes_received; }

  /// While an Uncounted lives, the group's traffic is left out of traffic(): a mode's evaluation
  /// passes and checkpoint gathers are not training steps (DESIGN 3.5 counts per step).
  class Uncounted {
   public:
    explicit Uncounted(ProcessGroup& group) : group_(group), before_(group.total()) {}
    ~Uncounted();
    Uncounted(const Uncounted&) = delete;
    Uncounted& operator=(const Uncounted&) = delete;

   private:
    ProcessGroup& group_;
    Traffic before_;
  };

 private:
  struct Compiled {
    CompiledSchedule schedule;
    size_t predicted_sent_bytes;
  };
  // In place, reduce_scatter's output is a block of its input and allgather's input a block of its
  // output: the schedule must know, to order a step that writes memory another one reads.
  Compiled& compiled(Collective collective, size_t count, bool inplace = false);
  uint64_t next_sequence();
  Traffic total() const;  // counted or not

  GroupTransport transport_;
  Topology topology_;
  const char* algorithm_;  // "direct" with peer reads, "ring" without
  HostExecutor executor_;
  double timeout_s_;
  unsigned id_;
  uint32_t calls_ = 0;
  Traffic uncounted_;
  std::map<std::tuple<Collective, size_t, bool>, std::unique_ptr<Compiled>> compiled_;
};

}  // namespace cclab::train
