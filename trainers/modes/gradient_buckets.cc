#include "modes/gradient_buckets.h"

#include "cclab/error.h"
#include "cclab/trace.h"

namespace cclab::train {

using Clock = std::chrono::steady_clock;

std::vector<BucketSpan> plan_buckets(const std::vector<ParameterRange>& ranges, size_t bucket_bytes,
                                     size_t buffer_elements) {
  std::vector<BucketSpan> buckets;
  if (ranges.empty()) return buckets;
  size_t start = ranges.front().offset, end = start;
  const auto close = [&] {
    if (end == start) return;
    buckets.push_back({start, end - start});
    start = end;
  };
  for (const ParameterRange& range : ranges) {
    if (range.offset != end) throw Error("gradient buckets need contiguous parameter ranges in backward order");
    end = range.offset + range.count;
    if ((end - start) * sizeof(float) >= bucket_bytes) close();
  }
  close();
  if (end > buffer_elements) throw Error("gradient buckets reach past the gradient buffer");
  return buckets;
}

GradientBuckets::GradientBuckets(ProcessGroup& group, std::span<float> gradients,
                                 const std::vector<ParameterRange>& ranges, size_t bucket_bytes)
    : group_(group), gradients_(gradients.data()) {
  for (const BucketSpan& span : plan_buckets(ranges, bucket_bytes, gradients.size())) {
    Bucket& bucket = buckets_.emplace_back();
    static_cast<BucketSpan&>(bucket) = span;
    predicted_sent_bytes_ += double(group.predicted_sent_bytes(Collective::allreduce, span.count));
    textbook_sent_bytes_ += train::textbook_sent_bytes(Collective::allreduce, span.count, group.size());
  }
}

void GradientBuckets::begin_step() {
  watermark_ = 0;
  next_ = 0;
  comm_s_ = 0;
}

void GradientBuckets::ready(const ParameterRange& range) {
  const TraceSpan span("comm", "gradient buckets");
  const auto start = Clock::now();
  watermark_ = std::max(watermark_, range.offset + range.count);
  while (next_ < buckets_.size() && buckets_[next_].offset + buckets_[next_].count <= watermark_) {
    Bucket& bucket = buckets_[next_++];
    bucket.call = group_.start_allreduce(gradients_ + bucket.offset, bucket.count);
  }
  for (size_t i = 0; i < next_; ++i)
    if (!buckets_[i].call->done()) buckets_[i].call->test();
  comm_s_ += seconds_between(start, Clock::now());
}

void GradientBuckets::finish() {
  if (!buckets_.empty()) ready({0, buckets_.back().offset + buckets_.back().count, 0});
  const TraceSpan span("comm", "finish gradient sync");
  const auto start = Clock::now();
  const Deadline deadline = group_.deadline();
  for (Bucket& bucket : buckets_) {
    bucket.call->wait(deadline);
    bucket.call.reset();
  }
  comm_s_ += seconds_between(start, Clock::now());
}

}  // namespace cclab::train
