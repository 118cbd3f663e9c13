#include "modes/sharded_gradient_buckets.h"

#include <algorithm>
#include <chrono>
#include <string>

#include "cclab/deadline.h"
#include "cclab/error.h"
#include "cclab/trace.h"

namespace cclab::train {
namespace {

using Clock = std::chrono::steady_clock;

// Message ids are 24 bits: the top one is the step's parity, the rest number the step's segments.
// Before any rank posts a step's messages, every peer has received all of the previous step's
// (its allgathers, which a rank finishes a step with, start only after them), so the parity is
// insurance rather than a need.
constexpr uint32_t kParityBit = uint32_t{1} << 23;

bool done(const std::unique_ptr<PendingCollective>& call) { return !call || call->done(); }

// Polls `call` once unless it is absent or complete; true if this poll completed it.
bool poll(const std::unique_ptr<PendingCollective>& call) { return !done(call) && call->test(); }

// Polls `request` once unless it is absent; resets it once complete. True if this poll completed it.
bool poll(RequestPtr& request) {
  if (!request || !request->complete()) return false;
  request.reset();
  return true;
}

// A rank's registered memory: its parameters, then its gradients, each part starting on a page.
constexpr size_t kPage = 4096;
size_t whole_pages(size_t bytes) { return (bytes + kPage - 1) / kPage * kPage; }

}  // namespace

size_t ShardedGradientBuckets::shared_bytes_per_rank(const ParameterStore& store) {
  return 2 * whole_pages(store.size() * sizeof(float));
}

void ShardedGradientBuckets::place_in_shared_memory(Model& model, std::byte* memory) {
  const size_t count = model.parameters().size();
  model.place_parameters({reinterpret_cast<float*>(memory), count},
                         {reinterpret_cast<float*>(memory + whole_pages(count * sizeof(float))), count});
}

double ShardedGradientBuckets::bucket_sent_bytes(size_t count, size_t ranks, bool peer_reads,
                                                 const std::function<double(Collective, size_t)>& group_bytes) {
  const size_t block = count / ranks, tail = count - block * ranks;
  double bytes = 0;
  if (block > 0) {
    // Every element of the other blocks goes to its owner once: (N-1)/N of the main part, the ring
    // reduce-scatter's volume; the updated blocks come back as much (the allgather's).
    bytes += peer_reads ? group_bytes(Collective::reduce_scatter, block) : double((ranks - 1) * block * sizeof(float));
    bytes += group_bytes(Collective::allgather, block);
  }
  if (tail > 0) bytes += group_bytes(Collective::allreduce, tail);
  return bytes;
}

ShardedGradientBuckets::ShardedGradientBuckets(ProcessGroup& reduce_group, ProcessGroup& gather_group,
                                               ParameterStore& store, SgdMomentum& optimizer,
                                               const std::vector<ParameterRange>& ranges, size_t bucket_bytes,
                                               bool yield_when_idle, bool peer_reads)
    : reduce_group_(reduce_group),
      gather_group_(gather_group),
      store_(store),
      optimizer_(optimizer),
      yield_when_idle_(yield_when_idle),
      peer_reads_(peer_reads) {
  if (reduce_group.members() != gather_group.members())
    throw Error("sharded gradient buckets need the same members in both groups");
  const size_t ranks = size_t(reduce_group.size());
  size_t messages = 0;
  for (const BucketSpan& span : plan_buckets(ranges, bucket_bytes, store.size())) {
    Bucket& bucket = buckets_.emplace_back();
    static_cast<BucketSpan&>(bucket) = span;
    bucket.block = span.count / ranks;
    bucket.tail = span.count - bucket.block * ranks;
    bucket.segments = peer_reads_ ? 1 : (bucket.block + kSegmentElements - 1) / kSegmentElements;
    bucket.first_message = uint32_t(messages);
    textbook_sent_bytes_ += train::textbook_sent_bytes(Collective::allreduce, span.count, int(ranks));
    predicted_sent_bytes_ +=
        bucket_sent_bytes(span.count, ranks, peer_reads_, [&](Collective collective, size_t elements) {
          ProcessGroup& group = collective == Collective::allgather ? gather_group : reduce_group;
          return double(group.predicted_sent_bytes(collective, elements));
        });
    if (peer_reads_) continue;
    messages += bucket.segments;
    bucket.contributions.resize((ranks - 1) * bucket.block);
  }
  if (messages >= kParityBit) throw Error("sharded gradient buckets: too many segments for the message ids");
  contributions_.resize(ranks - 1);
}

size_t ShardedGradientBuckets::block_offset(const Bucket& bucket) const {
  return bucket.offset + size_t(reduce_group_.rank()) * bucket.block;
}

void ShardedGradientBuckets::begin_step() {
  watermark_ = 0;
  started_ = 0;
  updated_ = 0;
  step_parity_ ^= kParityBit;
  comm_s_ = 0;
  update_s_ = 0;
}

void ShardedGradientBuckets::start(Bucket& bucket) {
  const int ranks = reduce_group_.size(), me = reduce_group_.rank();
  float* gradients = store_.gradients().data();
  bucket.segments_updated = bucket.block == 0 ? bucket.segments : 0;
  bucket.tail_updated = bucket.tail == 0;
  if (bucket.tail > 0)
    bucket.tail_sum =
        reduce_group_.start_allreduce(gradients + bucket.offset + bucket.count - bucket.tail, bucket.tail);
  if (peer_reads_) {
    bucket.consumed = 0;
    if (bucket.block > 0)
      bucket.reduce = reduce_group_.start_reduce_scatter(
          gradients + bucket.offset, bucket.block,
          [this, &bucket](const std::byte* own, const std::byte* peer, size_t count, size_t offset) {
            update_summed(bucket, reinterpret_cast<const float*>(own), reinterpret_cast<const float*>(peer), count,
                          offset);
          });
    return;
  }
  bucket.sends.clear();
  bucket.receives.clear();
  // Receives first, so that a peer's message finds its buffer; segment by segment, so that the
  // first segment of every peer arrives first.
  for (size_t segment = 0; segment < bucket.segments; ++segment) {
    const size_t first = segment * kSegmentElements, count = std::min(kSegmentElements, bucket.block - first);
    const uint32_t message = step_parity_ | (bucket.first_message + uint32_t(segment));
    for (int k = 0, peer = 0; peer < ranks; ++peer)
      if (peer != me)
        bucket.receives.push_back(reduce_group_.irecv(
            peer, bucket.contributions.data() + size_t(k++) * bucket.block + first, count, message));
    for (int peer = 0; peer < ranks; ++peer)
      if (peer != me)
        bucket.sends.push_back(
            reduce_group_.isend(peer, gradients + bucket.offset + size_t(peer) * bucket.block + first, count, message));
  }
}

bool ShardedGradientBuckets::update_received(Bucket& bucket) {
  const auto start = Clock::now();
  const std::span<float> values = store_.values();
  const std::span<const float> gradients = store_.gradients();
  const size_t peers = contributions_.size(), mine = block_offset(bucket);
  bool moved = false;
  if (peer_reads_ && bucket.segments_updated < bucket.segments && done(bucket.reduce)) {
    // Its consumer updated the block as the sums were made.
    if (bucket.consumed != bucket.block)
      throw Error("sharded gradient buckets: the reduce-scatter summed " + std::to_string(bucket.consumed) + " of " +
                  std::to_string(bucket.block) + " elements into the update");
    bucket.segments_updated = bucket.segments;
    moved = true;
  }
  while (!peer_reads_ && bucket.segments_updated < bucket.segments) {
    const size_t segment = bucket.segments_updated;
    const auto receives = bucket.receives.begin() + std::ptrdiff_t(segment * peers);
    if (!std::all_of(receives, receives + std::ptrdiff_t(peers), [](const RequestPtr& r) { return !r; })) break;
    const size_t first = segment * kSegmentElements, count = std::min(kSegmentElements, bucket.block - first);
    for (size_t k = 0; k < peers; ++k) contributions_[k] = bucket.contributions.data() + k * bucket.block + first;
    optimizer_.step_range_summed(values.subspan(mine + first, count), gradients.subspan(mine + first, count),
                                 contributions_, mine + first);
    ++bucket.segments_updated;
    moved = true;
  }
  if (!bucket.tail_updated && done(bucket.tail_sum)) {
    const size_t tail = bucket.offset + bucket.count - bucket.tail;
    optimizer_.step_range(values.subspan(tail, bucket.tail), gradients.subspan(tail, bucket.tail), tail);
    bucket.tail_updated = moved = true;
  }
  if (moved) update_s_ += seconds_between(start, Clock::now());
  return moved;
}

void ShardedGradientBuckets::update_summed(Bucket& bucket, const float* own, const float* peer, size_t count,
                                           size_t offset) {
  const auto start = Clock::now();
  const size_t first = block_offset(bucket) + offset;
  optimizer_.step_range_summed(store_.values().subspan(first, count), {own, count}, {&peer, 1}, first);
  bucket.consumed += count;
  update_s_ += seconds_between(start, Clock::now());
}

bool ShardedGradientBuckets::updated(const Bucket& bucket) const {
  return bucket.segments_updated == bucket.segments && bucket.tail_updated;
}

bool ShardedGradientBuckets::progress() {
  bool moved = reduce_group_.progress();
  for (size_t i = updated_; i < started_; ++i) {
    Bucket& bucket = buckets_[i];
    for (RequestPtr& receive : bucket.receives) moved |= poll(receive);
    moved |= poll(bucket.reduce);
    moved |= poll(bucket.tail_sum);
    moved |= update_received(bucket);
  }
  for (size_t i = 0; i < started_; ++i)
    for (RequestPtr& send : buckets_[i].sends) moved |= poll(send);
  // In bucket order, so that every rank starts the gather group's calls in the same order.
  while (updated_ < started_ && updated(buckets_[updated_])) {
    Bucket& bucket = buckets_[updated_++];
    if (bucket.block > 0)
      bucket.gather = gather_group_.start_allgather(store_.values().data() + bucket.offset, bucket.block);
    moved = true;
  }
  for (size_t i = 0; i < updated_; ++i) moved |= poll(buckets_[i].gather);
  return moved;
}

void ShardedGradientBuckets::ready(const ParameterRange& range) {
  const TraceSpan span("comm", "gradient buckets");
  const auto start_time = Clock::now();
  const double update_before = update_s_;
  watermark_ = std::max(watermark_, range.offset + range.count);
  while (started_ < buckets_.size() && buckets_[started_].offset + buckets_[started_].count <= watermark_)
    start(buckets_[started_++]);
  progress();
  comm_s_ += seconds_between(start_time, Clock::now()) - (update_s_ - update_before);
}

// Every message and call of the step, oldest first: `visit` returns true to stop.
template <class Visit>
bool ShardedGradientBuckets::find_pending(Visit visit) {
  for (Bucket& bucket : buckets_) {
    for (std::vector<RequestPtr>* requests : {&bucket.receives, &bucket.sends})
      for (RequestPtr& request : *requests)
        if (request && visit(request.get(), nullptr)) return true;
    for (std::unique_ptr<PendingCollective>* call : {&bucket.reduce, &bucket.tail_sum, &bucket.gather})
      if (!done(*call) && visit(nullptr, call->get())) return true;
  }
  return false;
}

void ShardedGradientBuckets::finish() {
  if (!buckets_.empty()) ready({0, buckets_.back().offset + buckets_.back().count, 0});
  const TraceSpan span("comm", "finish gradient sync");
  const auto start = Clock::now();
  const double update_before = update_s_;
  // One loop over everything in flight rather than one wait per message or call: a segment's
  // update and a bucket's allgather start as soon as their inputs are found done, and the later
  // calls keep moving (a call advances only when polled).
  const Deadline deadline = reduce_group_.deadline();
  Backoff backoff(yield_when_idle_);
  const auto any = [](Request*, PendingCollective*) { return true; };
  while (updated_ < buckets_.size() || find_pending(any)) {
    if (progress()) {
      backoff.reset();
      continue;
    }
    // Past the deadline, the oldest wait throws the TimeoutError naming the rank awaited.
    if (backoff.expired(deadline)) {
      find_pending([&](Request* request, PendingCollective* call) {
        if (request) reduce_group_.wait(*request, deadline);
        if (call) call->wait(deadline);
        return true;
      });
    }
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
