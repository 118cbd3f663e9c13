// Data mode's gradient buckets with the SGD step sharded over the ranks (ZeRO stage 1, as PyTorch's
// ZeroRedundancyOptimizer with DDP): an allreduce is a reduce-scatter followed by an allgather, and
// the optimizer step is split between the two. Per bucket, every rank
//   1. reduce-scatters the bucket's gradients directly: it sends each peer that peer's block of its
//      gradients and receives every peer's part of its own block into `contributions`;
//   2. sums its own gradients and the contributions while it updates the parameters and momentum
//      of its block (SgdMomentum::step_range_summed), one segment as soon as it has arrived. The
//      gradient is summed by the update rather than written back and read again: the step is bound
//      by memory bandwidth, and this saves a pass over the block. (With peer reads, below, the
//      reduce-scatter reads the peers' gradients where they lie and hands each chunk's last two
//      operands to the update, which sums them as it steps: the sum is never written and read back.)
//   3. allgathers the updated PARAMETERS in place, so every rank ends the step with the same values.
// The traffic is the ring allreduce's, 2(N-1)/N of the bucket per rank (DESIGN 3.7), while each
// rank does 1/N of the update work.
//
// Words used below (N = group size):
// - bucket: as in GradientBuckets (plan_buckets): whole layers, in backward order, started from the
//   backward hook as soon as their gradients are final.
// - block:  our reduce-scatter and allgather take equal blocks, so they run on the first
//           main = N * floor(count / N) elements of the bucket; block r is elements
//           [offset + r * main/N, offset + (r+1) * main/N), updated by group rank r only.
// - segment: a block is sent in segments of at most kSegmentElements, one message each, so that
//           the update of the first segments overlaps the transfer of the later ones and reads a
//           contribution while it is still in cache.
// - tail:   the last count - main (< N) elements: summed by a tiny allreduce (or read from every
//           rank in shared memory), and updated by every rank (identically, so the values stay
//           equal without an allgather).
// Momentum: a rank's velocity is valid for its blocks and the tails only; gather_velocity()
// completes it (checkpoints). Velocity loaded from a checkpoint is complete, so every rank simply
// continues with its blocks of it.
//
// Two ways to move the data (chosen by the caller, the same on every rank):
// - transport: the reduce-scatter is point-to-point messages of 1 MiB segments into
//   `contributions`, the allgather a ring allgather, the tail a ring allreduce;
// - peer reads (every member on one node): every rank's parameters and gradients live in an array
//   registered with the Comm's PeerMemory (place_in_shared_memory), and the groups run the direct
//   collectives (cclab/peer_memory.h, algorithms/direct_reads.h): the reduce-scatter sums each block
//   from every rank's gradients where they lie, its final sums consumed by the owner's update chunk
//   by chunk (SumConsumer, cclab/host_executor.h), and the allgather copies the updated blocks from
//   their owners' parameters; the tail is a direct allreduce. These are the bench's collectives,
//   proven by the simulator, and the executor counts what peers read as sent by the owner.
//
// Call order. Every member must start a group's calls in the same order. Reduce-scatters and tail
// allreduces are started in bucket order from the hook (the same watermarks on every rank); an
// allgather is started when polling finds its bucket updated, which happens at different moments on
// different ranks, so the allgathers run in a group of their own (`gather_group`), in bucket order.
// The transport path's reduce-scatter messages are point-to-point, matched by their ids (bucket,
// segment, step parity).
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "model/buffer.h"
#include "model/model.h"
#include "model/optimizer.h"
#include "model/parameters.h"
#include "modes/gradient_buckets.h"
#include "modes/process_group.h"

namespace cclab::train {

class ShardedGradientBuckets {
 public:
  /// `reduce_group` and `gather_group`: the same members, two group ids (see "Call order").
  /// `store`'s gradients are summed and its values updated by `optimizer` over the runs `ranges`
  /// (contiguous, backward order). `yield_when_idle`: the transport's idle policy (oversubscribed).
  /// `peer_reads`: both groups read peers' memory and `store` lives in registered memory
  /// (place_in_shared_memory); false to move everything through the transport.
  ShardedGradientBuckets(ProcessGroup& reduce_group, ProcessGroup& gather_group, ParameterStore& store,
                         SgdMomentum& optimizer, const std::vector<ParameterRange>& ranges, size_t bucket_bytes,
                         bool yield_when_idle, bool peer_reads = false);

  /// Bytes of registered memory a rank needs for `store` (its parameters, then its gradients).
  static size_t shared_bytes_per_rank(const ParameterStore& store);
  /// Moves `model`'s parameters and gradients into `memory` (shared_bytes_per_rank bytes).
  static void place_in_shared_memory(Model& model, std::byte* memory);

  size_t size() const { return buckets_.size(); }
  /// Elements per reduce-scatter message (1 MiB, as the ring collectives' segments).
  static constexpr size_t kSegmentElements = (size_t{1} << 20) / sizeof(float);

  /// Bytes a rank sends for one bucket of `count` elements over `ranks`: what
  /// `group_bytes(collective, elements)` says the group's collectives send (reduce-scatter with peer
  /// reads, allgather, the tail's allreduce), and through the transport every element of the other
  /// blocks to its owner in messages. The planner predicts with it too.
  static double bucket_sent_bytes(size_t count, size_t ranks, bool peer_reads,
                                  const std::function<double(Collective, size_t)>& group_bytes);

  /// Bytes this rank sends in one step's reduce-scatters, allgathers and tail allreduces.
  double predicted_sent_bytes() const { return predicted_sent_bytes_; }
  /// The same by DESIGN 3.7's formula for the ring allreduce it replaces, without chunk rounding.
  double textbook_sent_bytes() const { return textbook_sent_bytes_; }

  void begin_step();
  /// The backward hook: gradients [0, range.offset + range.count) are final.
  void ready(const ParameterRange& range);
  /// After backward: drives every bucket of the step through its update and allgather.
  void finish();
  /// This step's time in ready() and finish(): in communication calls (comm_s) and in the sharded
  /// update (update_s).
  double comm_s() const { return comm_s_; }
  double update_s() const { return update_s_; }

  /// Collective (outside a step): every rank's velocity blocks go to every rank, so the optimizer's
  /// whole velocity is valid everywhere (a checkpoint saves it).
  void gather_velocity();

 private:
  struct Bucket : BucketSpan {
    size_t block = 0;            // elements per rank of the main part (main = N * block)
    size_t tail = 0;             // elements after the main part, count - N * block < N
    size_t segments = 0;         // transport: messages per peer of a block
    uint32_t first_message = 0;  // transport: the message id of segment 0 (before the step's parity)
    FloatBuffer contributions;   // transport: (N-1) x block: peer k's part of our block at k * block
    // receives[segment * (N-1) + k]: from the k-th peer; a request is reset once complete.
    std::vector<RequestPtr> sends, receives;
    size_t segments_updated = 0;
    size_t consumed = 0;  // peer reads: elements of the block the reduce-scatter's consumer updated
    bool tail_updated = false;
    std::unique_ptr<PendingCollective> reduce, tail_sum, gather;  // reduce: peer reads only
  };
  // Posts the bucket's reduce-scatter (messages, or the collective) and starts its tail allreduce.
  void start(Bucket& bucket);
  // Polls every call in flight once, updates the segments received and starts the allgathers of
  // the buckets updated, in order; true if anything moved.
  bool progress();
  // Updates the segments of `bucket` whose contributions have all arrived (with peer reads, marks
  // the block updated once its reduce-scatter's consumer has stepped all of it), and its tail once
  // summed; true if it updated anything.
  bool update_received(Bucket& bucket);
  // Peer reads: updates `count` elements of this rank's block of `bucket` from `offset` on, with the
  // gradient `own` + `peer` (the reduce-scatter's last reduction of those elements).
  void update_summed(Bucket& bucket, const float* own, const float* peer, size_t count, size_t offset);
  bool updated(const Bucket& bucket) const;
  // Calls visit(request, nullptr) or visit(nullptr, call) for each message and call of the step not
  // done, oldest first, until it returns true; true if it did.
  template <class Visit>
  bool find_pending(Visit visit);
  // The first element of this rank's block of `bucket` (block elements long).
  size_t block_offset(const Bucket& bucket) const;

  ProcessGroup& reduce_group_;
  ProcessGroup& gather_group_;
  ParameterStore& store_;
  SgdMomentum& optimizer_;
  bool yield_when_idle_;
  bool peer_reads_;
  std::vector<Bucket> buckets_;
  double predicted_sent_bytes_ = 0, textbook_sent_bytes_ = 0;
  size_t watermark_ = 0;
  size_t started_ = 0;  // buckets whose reduce-scatter (and tail allreduce) started
  size_t updated_ = 0;  // buckets updated, their allgather started
  uint32_t step_parity_ = 0;
  std::vector<const float*> contributions_;  // step_range_summed's argument, reused
  double comm_s_ = 0, update_s_ = 0;
};

}  // namespace cclab::train
