#include "modes/sharded_gradient_buckets.h"

#include <chrono>

#include "cclab/deadline.h"
#include "cclab/error.h"

namespace cclab::train {
namespace {

using Clock = std::chrono::steady_clock;

bool done(const std::unique_ptr<PendingCollective>& call) { return !call || call->done(); }

// Polls `call` once unless it is absent or complete; true if this poll completed it.
bool poll(const std::unique_ptr<PendingCollective>& call) { return !done(call) && call->test(); }

}  // namespace

ShardedGradientBuckets::ShardedGradientBuckets(ProcessGroup& reduce_group, ProcessGroup& gather_group,
                                               ParameterStore& store, SgdMomentum& optimizer,
                                               const std::vector<ParameterRange>& ranges, size_t bucket_bytes,
                                               bool yield_when_idle)
    : reduce_group_(reduce_group),
      gather_group_(gather_group),
      store_(store),
      optimizer_(optimizer),
      yield_when_idle_(yield_when_idle) {
  if (reduce_group.members() != gather_group.members())
    throw Error("sharded gradient buckets need the same members in both groups");
  const size_t ranks = size_t(reduce_group.size());
  for (const BucketSpan& span : plan_buckets(ranges, bucket_bytes, store.size())) {
    Bucket& bucket = buckets_.emplace_back();
    static_cast<BucketSpan&>(bucket) = span;
    bucket.block = span.count / ranks;
    bucket.tail = span.count - bucket.block * ranks;
    if (bucket.block > 0)
      predicted_sent_bytes_ += double(reduce_group.predicted_sent_bytes(Collective::reduce_scatter, bucket.block) +
                                      gather_group.predicted_sent_bytes(Collective::allgather, bucket.block));
    if (bucket.tail > 0)
      predicted_sent_bytes_ += double(reduce_group.predicted_sent_bytes(Collective::allreduce, bucket.tail));
  }
}

size_t ShardedGradientBuckets::block_offset(const Bucket& bucket) const {
  return bucket.offset + size_t(reduce_group_.rank()) * bucket.block;
}

void ShardedGradientBuckets::begin_step() {
  watermark_ = 0;
  started_ = 0;
  updated_ = 0;
  comm_s_ = 0;
  update_s_ = 0;
}

void ShardedGradientBuckets::update(Bucket& bucket) {
  const auto start = Clock::now();
  const std::span<float> values = store_.values();
  const std::span<const float> gradients = store_.gradients();
  const size_t mine = block_offset(bucket), tail = bucket.offset + bucket.count - bucket.tail;
  if (bucket.block > 0)
    optimizer_.step_range(values.subspan(mine, bucket.block), gradients.subspan(mine, bucket.block), mine);
  if (bucket.tail > 0)
    optimizer_.step_range(values.subspan(tail, bucket.tail), gradients.subspan(tail, bucket.tail), tail);
  update_s_ += seconds_between(start, Clock::now());
}

bool ShardedGradientBuckets::progress() {
  bool completed = false;
  for (size_t i = updated_; i < started_; ++i) {
    completed |= poll(buckets_[i].reduce);
    completed |= poll(buckets_[i].tail_sum);
  }
  // In bucket order, so that every rank starts the gather group's calls in the same order.
  while (updated_ < started_ && done(buckets_[updated_].reduce) && done(buckets_[updated_].tail_sum)) {
    Bucket& bucket = buckets_[updated_++];
    update(bucket);
    if (bucket.block > 0)
      bucket.gather = gather_group_.start_allgather(store_.values().data() + bucket.offset, bucket.block);
  }
  for (size_t i = 0; i < updated_; ++i) completed |= poll(buckets_[i].gather);
  return completed;
}

void ShardedGradientBuckets::ready(const ParameterRange& range) {
  const auto start = Clock::now();
  const double update_before = update_s_;
  watermark_ = std::max(watermark_, range.offset + range.count);
  while (started_ < buckets_.size() && buckets_[started_].offset + buckets_[started_].count <= watermark_) {
    Bucket& bucket = buckets_[started_++];
    float* gradients = store_.gradients().data();
    if (bucket.block > 0) bucket.reduce = reduce_group_.start_reduce_scatter(gradients + bucket.offset, bucket.block);
    if (bucket.tail > 0)
      bucket.tail_sum =
          reduce_group_.start_allreduce(gradients + bucket.offset + bucket.count - bucket.tail, bucket.tail);
  }
  progress();
  comm_s_ += seconds_between(start, Clock::now()) - (update_s_ - update_before);
}

PendingCollective* ShardedGradientBuckets::first_pending() {
  for (Bucket& bucket : buckets_)
    for (std::unique_ptr<PendingCollective>* call : {&bucket.reduce, &bucket.tail_sum, &bucket.gather})
      if (!done(*call)) return call->get();
  return nullptr;
}

void ShardedGradientBuckets::finish() {
  if (!buckets_.empty()) ready({0, buckets_.back().offset + buckets_.back().count, 0});
  const auto start = Clock::now();
  const double update_before = update_s_;
  // One loop over every call in flight rather than one wait per call: a bucket's update and
  // allgather start as soon as its reduce-scatter is found done, and the later calls keep moving
  // (a call advances only when polled).
  const Deadline deadline = reduce_group_.deadline();
  Backoff backoff(yield_when_idle_);
  while (updated_ < buckets_.size() || first_pending()) {
    if (progress()) {
      backoff.reset();
      continue;
    }
    // Past the deadline, the oldest call's wait throws the TimeoutError naming the ranks awaited.
    if (deadline.passed())
      if (PendingCollective* oldest = first_pending()) oldest->wait(deadline);
    backoff.idle();
  }
  for (Bucket& bucket : buckets_) {
    bucket.reduce.reset();
    bucket.tail_sum.reset();
    bucket.gather.reset();
  }
  comm_s_ += seconds_between(start, Clock::now()) - (update_s_ - update_before);
}

void ShardedGradientBuckets::gather_velocity() {
  const Deadline deadline = gather_group_.deadline();
  float* velocity = optimizer_.velocity().data();
  for (const Bucket& bucket : buckets_)
    if (bucket.block > 0) gather_group_.start_allgather(velocity + bucket.offset, bucket.block)->wait(deadline);
}

}  // namespace cclab::train
