// DDP's gradient buckets (DESIGN 3.6), shared by every mode that sums gradients over replicas: data
// mode (the whole model over all ranks), hybrid (the data-parallel convolution prefix) and the data x
// pipeline grid (each stage over its replicas).
//
// The parameter runs to sum are grouped, in backward order (= increasing offset of the flat buffer,
// parameters.h), into buckets of at least `bucket_bytes` (a layer is never split, as in PyTorch DDP;
// the last bucket takes what is left). Every replica computes the same boundaries from the same
// model and starts the buckets in the same order, so the group's call numbers match. During backward
// the model's hook calls ready(): a watermark advances, each bucket whose end it passed starts its
// in-place ring allreduce (sum: the loss is normalised by the global batch, so the sum over replicas
// is the single-process gradient), and every call in flight is polled once. finish() starts what is
// left and waits for all.
#pragma once

#include <chrono>
#include <memory>
#include <span>
#include <vector>

#include "cclab/host_executor.h"
#include "model/parameters.h"
#include "modes/process_group.h"

namespace cclab::train {

/// Elements [offset, offset + count) of the flat gradient buffer, summed over the replicas as one unit.
struct BucketSpan {
  size_t offset = 0, count = 0;
};
/// The buckets of `ranges` (contiguous, in backward order): consecutive runs of whole layers of at
/// least `bucket_bytes` each, the last one taking what is left. Throws if the ranges are not
/// contiguous or reach past `buffer_elements`. Shared by GradientBuckets and ShardedGradientBuckets
/// so both modes of summing cut the model at the same places.
std::vector<BucketSpan> plan_buckets(const std::vector<ParameterRange>& ranges, size_t bucket_bytes,
                                     size_t buffer_elements);

class GradientBuckets {
 public:
  /// `ranges`: the runs of `gradients` to sum over `group`, in backward order and contiguous (the
  /// whole store's backward_order(), or the part of it that belongs to the replicated layers).
  GradientBuckets(ProcessGroup& group, std::span<float> gradients, const std::vector<ParameterRange>& ranges,
                  size_t bucket_bytes);

  size_t size() const { return buckets_.size(); }
  /// Bytes this rank sends in one step's allreduces (the simulator's count).
  double predicted_sent_bytes() const { return predicted_sent_bytes_; }
  /// The same by DESIGN 3.7's formula, without chunk rounding.
  double textbook_sent_bytes() const { return textbook_sent_bytes_; }

  void begin_step();
  /// The backward hook: gradients [0, range.offset + range.count) are final.
  void ready(const ParameterRange& range);
  /// After backward: starts the buckets not started yet (those the hook did not reach) and waits
  /// for every call of the step.
  void finish();
  /// This step's time inside ready() and finish(): starting, polling, and finishing the transfers
  /// and reductions that did not overlap backward (including waiting for a replica that is behind).
  double comm_s() const { return comm_s_; }

 private:
  struct Bucket : BucketSpan {
    std::unique_ptr<PendingCollective> call;
  };
  ProcessGroup& group_;
  float* gradients_;
  std::vector<Bucket> buckets_;
  double predicted_sent_bytes_ = 0, textbook_sent_bytes_ = 0;
  size_t watermark_ = 0, next_ = 0;
  double comm_s_ = 0;
};

/// Seconds between two points of the steady clock (step-time accounting of the modes).
inline double seconds_between(std::chrono::steady_clock::time_point from, std::chrono::steady_clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

}  // namespace cclab::train
