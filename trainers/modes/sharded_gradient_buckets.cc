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

// A rank's segment of node-shared memory: its step counters (per bucket: ready, updated), then its
// parameters, then its gradients, each part starting on a page.
constexpr size_t kPage = 4096;
size_t whole_pages(size_t bytes) { return (bytes + kPage - 1) / kPage * kPage; }
struct SharedLayout {
  size_t values = 0, gradients = 0, bytes = 0;  // offsets of the parts, and the whole
  explicit SharedLayout(const ParameterStore& store) {
    const size_t most_buckets = store.backward_order().size();  // a bucket holds one layer at least
    values = whole_pages(2 * most_buckets * sizeof(uint64_t));
    gradients = values + whole_pages(store.size() * sizeof(float));
    bytes = gradients + whole_pages(store.size() * sizeof(float));
  }
};

// The k-th peer of `me` (every group rank but `me`, in order).
int peer_of(size_t k, int me) { return int(k) < me ? int(k) : int(k) + 1; }

}  // namespace

size_t ShardedGradientBuckets::shared_bytes_per_rank(const ParameterStore& store) { return SharedLayout(store).bytes; }

void ShardedGradientBuckets::place_in_shared_memory(Model& model, const NodeSharedMemory& shared, int rank) {
  const SharedLayout layout(model.parameters());
  if (shared.segment_bytes() < layout.bytes) throw Error("node-shared memory: the segment is too small for the model");
  std::byte* segment = shared.segment(rank);
  const size_t count = model.parameters().size();
  model.place_parameters({reinterpret_cast<float*>(segment + layout.values), count},
                         {reinterpret_cast<float*>(segment + layout.gradients), count});
}

SharedCounter ShardedGradientBuckets::ready_counter(int rank, size_t bucket) const {
  return SharedCounter(reinterpret_cast<uint64_t*>(shared_->segment(rank)) + 2 * bucket);
}
SharedCounter ShardedGradientBuckets::updated_counter(int rank, size_t bucket) const {
  return SharedCounter(reinterpret_cast<uint64_t*>(shared_->segment(rank)) + 2 * bucket + 1);
}
float* ShardedGradientBuckets::shared_values(int rank) const {
  return reinterpret_cast<float*>(shared_->segment(rank) + shared_values_offset_);
}
const float* ShardedGradientBuckets::shared_gradients(int rank) const {
  return reinterpret_cast<const float*>(shared_->segment(rank) + shared_gradients_offset_);
}

double ShardedGradientBuckets::bucket_sent_bytes(size_t count, size_t ranks, bool shared,
                                                 const std::function<double(Collective, size_t)>& group_bytes) {
  const size_t block = count / ranks, tail = count - block * ranks;
  // Every element of the other blocks goes to its owner once: (N-1)/N of the main part, the ring
  // reduce-scatter's volume; the updated blocks come back as much (the allgather's).
  double bytes = double((ranks - 1) * block * sizeof(float));
  if (shared) return bytes + double((ranks - 1) * (block + tail) * sizeof(float));
  if (block > 0) bytes += group_bytes(Collective::allgather, block);
  if (tail > 0) bytes += group_bytes(Collective::allreduce, tail);
  return bytes;
}

ShardedGradientBuckets::ShardedGradientBuckets(ProcessGroup& reduce_group, ProcessGroup& gather_group,
                                               ParameterStore& store, SgdMomentum& optimizer,
                                               const std::vector<ParameterRange>& ranges, size_t bucket_bytes,
                                               bool yield_when_idle, const NodeSharedMemory* shared)
    : reduce_group_(reduce_group),
      gather_group_(gather_group),
      store_(store),
      optimizer_(optimizer),
      yield_when_idle_(yield_when_idle),
      shared_(shared) {
  if (reduce_group.members() != gather_group.members())
    throw Error("sharded gradient buckets need the same members in both groups");
  const size_t ranks = size_t(reduce_group.size());
  if (shared_) {
    const SharedLayout layout(store);
    shared_values_offset_ = layout.values;
    shared_gradients_offset_ = layout.gradients;
    if (shared_->ranks() != reduce_group.size() || shared_->segment_bytes() < layout.bytes ||
        store.values().data() != shared_values(reduce_group.rank()))
      throw Error("sharded gradient buckets: the parameters are not placed in the node-shared memory given");
    tail_sum_.resize(ranks);
  }
  size_t messages = 0;
  for (const BucketSpan& span : plan_buckets(ranges, bucket_bytes, store.size())) {
    Bucket& bucket = buckets_.emplace_back();
    static_cast<BucketSpan&>(bucket) = span;
    bucket.block = span.count / ranks;
    bucket.tail = span.count - bucket.block * ranks;
    bucket.segments = (bucket.block + kSegmentElements - 1) / kSegmentElements;
    bucket.first_message = uint32_t(messages);
    textbook_sent_bytes_ += train::textbook_sent_bytes(Collective::allreduce, span.count, int(ranks));
    messages += bucket.segments;
    predicted_sent_bytes_ +=
        bucket_sent_bytes(span.count, ranks, shared_ != nullptr, [&](Collective collective, size_t elements) {
          ProcessGroup& group = collective == Collective::allgather ? gather_group : reduce_group;
          return double(group.predicted_sent_bytes(collective, elements));
        });
    if (shared_) continue;
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
  ++step_;
  comm_s_ = 0;
  update_s_ = 0;
}

void ShardedGradientBuckets::start(Bucket& bucket) {
  const int ranks = reduce_group_.size(), me = reduce_group_.rank();
  float* gradients = store_.gradients().data();
  bucket.segments_updated = 0;
  bucket.tail_updated = bucket.tail == 0;
  if (shared_) {
    // Each peer reads its block's part and the tail of our gradients where they lie.
    bucket.gathered_from.assign(size_t(ranks), false);
    bucket.gathered_from[size_t(me)] = true;
    ready_counter(me, index_of(bucket)).raise_to(step_);
    for (int peer = 0; peer < ranks; ++peer)
      if (peer != me) reduce_group_.count_direct_traffic(peer, (bucket.block + bucket.tail) * sizeof(float), 0);
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
  if (bucket.tail > 0)
    bucket.tail_sum =
        reduce_group_.start_allreduce(gradients + bucket.offset + bucket.count - bucket.tail, bucket.tail);
}

bool ShardedGradientBuckets::update_received(Bucket& bucket) {
  const auto start = Clock::now();
  const std::span<float> values = store_.values();
  const std::span<const float> gradients = store_.gradients();
  const int me = reduce_group_.rank();
  const size_t peers = contributions_.size(), mine = block_offset(bucket);
  const bool shared_ready = shared_ && !updated(bucket) && peers_ready(bucket);
  bool moved = false;
  while (bucket.segments_updated < bucket.segments) {
    const size_t segment = bucket.segments_updated;
    const auto arrived = [&] {
      const auto receives = bucket.receives.begin() + std::ptrdiff_t(segment * peers);
      return std::all_of(receives, receives + std::ptrdiff_t(peers), [](const RequestPtr& r) { return !r; });
    };
    if (shared_ ? !shared_ready : !arrived()) break;
    const size_t first = segment * kSegmentElements, count = std::min(kSegmentElements, bucket.block - first);
    for (size_t k = 0; k < peers; ++k)
      contributions_[k] = shared_ ? shared_gradients(peer_of(k, me)) + mine + first
                                  : bucket.contributions.data() + k * bucket.block + first;
    optimizer_.step_range_summed(values.subspan(mine + first, count), gradients.subspan(mine + first, count),
                                 contributions_, mine + first);
    ++bucket.segments_updated;
    moved = true;
  }
  if (!bucket.tail_updated && (shared_ ? shared_ready : done(bucket.tail_sum))) {
    // In shared memory our tail gradients are what the peers read: sum into scratch.
    const size_t tail = bucket.offset + bucket.count - bucket.tail;
    if (shared_) sum_shared_tail(bucket);
    optimizer_.step_range(
        values.subspan(tail, bucket.tail),
        shared_ ? std::span<const float>(tail_sum_.data(), bucket.tail) : gradients.subspan(tail, bucket.tail), tail);
    bucket.tail_updated = moved = true;
  }
  if (shared_ && moved && updated(bucket)) {
    updated_counter(me, index_of(bucket)).raise_to(step_);
    for (int peer = 0; peer < reduce_group_.size(); ++peer)
      if (peer != me) {
        reduce_group_.count_direct_traffic(peer, 0, (bucket.block + bucket.tail) * sizeof(float));
        gather_group_.count_direct_traffic(peer, bucket.block * sizeof(float), 0);  // it copies our block
      }
  }
  if (moved) update_s_ += seconds_between(start, Clock::now());
  return moved;
}

bool ShardedGradientBuckets::peers_ready(const Bucket& bucket) const {
  for (int peer = 0; peer < reduce_group_.size(); ++peer)
    if (!ready_counter(peer, index_of(bucket)).reached(step_)) return false;
  return true;
}

void ShardedGradientBuckets::sum_shared_tail(const Bucket& bucket) {
  const size_t tail = bucket.offset + bucket.count - bucket.tail;
  std::fill(tail_sum_.begin(), tail_sum_.begin() + std::ptrdiff_t(bucket.tail), 0.0f);
  for (int rank = 0; rank < reduce_group_.size(); ++rank)
    for (size_t i = 0; i < bucket.tail; ++i) tail_sum_[i] += shared_gradients(rank)[tail + i];
}

bool ShardedGradientBuckets::gather_shared(Bucket& bucket) {
  bool moved = false;
  for (int peer = 0; peer < reduce_group_.size(); ++peer) {
    if (bucket.gathered_from[size_t(peer)] || !updated_counter(peer, index_of(bucket)).reached(step_)) continue;
    const size_t block = bucket.offset + size_t(peer) * bucket.block;
    std::copy_n(shared_values(peer) + block, bucket.block, store_.values().data() + block);
    gather_group_.count_direct_traffic(peer, 0, bucket.block * sizeof(float));
    bucket.gathered_from[size_t(peer)] = moved = true;
  }
  return moved;
}

bool ShardedGradientBuckets::gathered(const Bucket& bucket) const {
  return std::all_of(bucket.gathered_from.begin(), bucket.gathered_from.end(), [](bool got) { return got; });
}

bool ShardedGradientBuckets::updated(const Bucket& bucket) const {
  return bucket.segments_updated == bucket.segments && bucket.tail_updated;
}

bool ShardedGradientBuckets::progress() {
  bool moved = reduce_group_.progress();
  for (size_t i = updated_; i < started_; ++i) {
    Bucket& bucket = buckets_[i];
    for (RequestPtr& receive : bucket.receives) moved |= poll(receive);
    moved |= poll(bucket.tail_sum);
    moved |= update_received(bucket);
  }
  for (size_t i = 0; i < started_; ++i)
    for (RequestPtr& send : buckets_[i].sends) moved |= poll(send);
  // In bucket order, so that every rank starts the gather group's calls in the same order.
  while (updated_ < started_ && updated(buckets_[updated_])) {
    Bucket& bucket = buckets_[updated_++];
    if (!shared_ && bucket.block > 0)
      bucket.gather = gather_group_.start_allgather(store_.values().data() + bucket.offset, bucket.block);
    moved = true;
  }
  for (size_t i = 0; i < updated_; ++i) moved |= shared_ ? gather_shared(buckets_[i]) : poll(buckets_[i].gather);
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
    for (std::unique_ptr<PendingCollective>* call : {&bucket.tail_sum, &bucket.gather})
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
  const auto pending = [&] {
    return shared_ ? !std::all_of(buckets_.begin(), buckets_.end(), [&](const Bucket& b) { return gathered(b); })
                   : find_pending(any);
  };
  while (updated_ < buckets_.size() || pending()) {
    if (progress()) {
      backoff.reset();
      continue;
    }
    // Past the deadline, the oldest wait throws the TimeoutError naming the rank awaited.
    if (deadline.passed()) {
      if (shared_) throw TimeoutError(shared_wait_description());
      find_pending([&](Request* request, PendingCollective* call) {
        if (request) reduce_group_.wait(*request, deadline);
        if (call) call->wait(deadline);
        return true;
      });
    }
    backoff.idle();
  }
  for (Bucket& bucket : buckets_) {
    bucket.tail_sum.reset();
    bucket.gather.reset();
  }
  comm_s_ += seconds_between(start, Clock::now()) - (update_s_ - update_before);
}

std::string ShardedGradientBuckets::shared_wait_description() const {
  const int me = reduce_group_.rank();
  for (const Bucket& bucket : buckets_)
    for (int peer = 0; peer < reduce_group_.size(); ++peer) {
      const bool ready = ready_counter(peer, index_of(bucket)).reached(step_);
      if (ready && (!updated(bucket) || updated_counter(peer, index_of(bucket)).reached(step_))) continue;
      return "rank " + std::to_string(reduce_group_.members()[size_t(me)]) +
             " timed out in the gradient exchange (node-shared memory) waiting for rank " +
             std::to_string(reduce_group_.members()[size_t(peer)]) + (ready ? " to update" : " to finish") +
             " bucket " + std::to_string(index_of(bucket));
    }
  return "rank " + std::to_string(reduce_group_.members()[size_t(me)]) + " timed out in the gradient exchange";
}

void ShardedGradientBuckets::gather_velocity() {
  const Deadline deadline = gather_group_.deadline();
  float* velocity = optimizer_.velocity().data();
  for (const Bucket& bucket : buckets_)
    if (bucket.block > 0) gather_group_.start_allgather(velocity + bucket.offset, bucket.block)->wait(deadline);
}

}  // namespace cclab::train
