#include "data/loader.h"

#include <numeric>

#include "cclab/error.h"
#include "model/random.h"

namespace cclab::train {

namespace {
constexpr uint64_t kShuffleStream = 0x5348'5546'0000'0000ull;
}

BatchLoader::BatchLoader(const Dataset& dataset, size_t global_batch, uint64_t seed, bool shuffle, Shard shard)
    : dataset_(dataset), global_batch_(global_batch), seed_(seed), shuffle_(shuffle), shard_(shard) {
  if (global_batch == 0) throw UsageError("the batch size must be at least 1");
  // shard.rank == shard.ranks is a rank past the last shard: it loads nothing (a parameter server).
  if (shard.ranks == 0 || shard.rank > shard.ranks)
    throw Error("shard " + std::to_string(shard.rank) + " of " + std::to_string(shard.ranks) + " does not exist");
  if (dataset.size() == 0) throw UsageError("data set " + dataset.description() + " is empty");
}

size_t BatchLoader::steps_per_epoch() const { return (dataset_.size() + global_batch_ - 1) / global_batch_; }

size_t BatchLoader::max_local_batch() const {
  // Shards of a global batch of g have floor or ceil(g / ranks) samples.
  const size_t biggest_global = std::min(global_batch_, dataset_.size());
  return (biggest_global + shard_.ranks - 1) / shard_.ranks;
}

std::pair<size_t, size_t> BatchLoader::shard_range(size_t global_size, Shard shard) {
  if (shard.rank >= shard.ranks) return {global_size, global_size};
  return {shard.rank * global_size / shard.ranks, (shard.rank + 1) * global_size / shard.ranks};
}

const std::vector<size_t>& BatchLoader::order(size_t epoch) {
  if (order_epoch_ == epoch) return order_;
  order_.resize(dataset_.size());
  std::iota(order_.begin(), order_.end(), size_t{0});
  if (shuffle_) {
    // Fisher-Yates with our own generator: the same order on every platform and standard library.
    CounterRng rng(seed_, kShuffleStream + epoch);
    for (size_t i = order_.size() - 1; i > 0; --i) std::swap(order_[i], order_[uniform_below(rng.next(), i + 1)]);
  }
  order_epoch_ = epoch;
  return order_;
}

BatchInfo BatchLoader::load(size_t epoch, size_t step, float* images, int32_t* labels) {
  if (step >= steps_per_epoch())
    throw Error("step " + std::to_string(step) + " is past the epoch's " + std::to_string(steps_per_epoch()));
  const std::vector<size_t>& indices = order(epoch);
  const size_t first = step * global_batch_;
  BatchInfo info;
  info.global_size = std::min(global_batch_, indices.size() - first);
  const auto [begin, end] = shard_range(info.global_size, shard_);
  info.local_offset = begin;
  info.local_size = end - begin;
  dataset_.gather(std::span(indices).subspan(first + begin, info.local_size), images, labels);
  return info;
}

}  // namespace cclab::train
