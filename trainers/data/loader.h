// Batches of a Dataset: a deterministic shuffle per (seed, epoch), global batches cut from it in
// order, and each global batch split into contiguous shards, one per data-parallel rank.
//
// Shard r of R gets samples [r*g/R, (r+1)*g/R) of a global batch of g (sizes differ by at most one).
// Every rank computes the same permutation, so the union of the shards of step s is exactly the
// single-process batch of step s: data-parallel training decomposes single-process training.
// Stateless per (epoch, step), so a pipeline stage or a restarted rank can load any batch.
#pragma once

#include <cstdint>
#include <vector>

#include "data/dataset.h"

namespace cclab::train {

/// This rank's place among the data-parallel ranks; rank == ranks: a rank that loads no samples.
struct Shard {
  size_t rank = 0, ranks = 1;
};

/// What load() produced.
struct BatchInfo {
  size_t global_size = 0;   // samples in the whole global batch (the loss normaliser)
  size_t local_size = 0;    // samples written (this shard)
  size_t local_offset = 0;  // where this shard starts within the global batch
};

class BatchLoader {
 public:
  /// The last global batch of an epoch is partial when the data set size is not a multiple of
  /// `global_batch` (all samples are used every epoch). `shuffle` off: the data set's order.
  BatchLoader(const Dataset& dataset, size_t global_batch, uint64_t seed, bool shuffle, Shard shard = {});

  size_t steps_per_epoch() const;
  /// Most samples one shard can get in a step (for sizing buffers).
  size_t max_local_batch() const;
  /// Writes this shard's part of global batch `step` of `epoch` into `images` / `labels`.
  BatchInfo load(size_t epoch, size_t step, float* images, int32_t* labels);
  /// The sample order of `epoch` (a permutation of the data set's indices).
  const std::vector<size_t>& order(size_t epoch);

  /// [begin, end) of shard `shard` within a global batch of `global_size` samples.
  static std::pair<size_t, size_t> shard_range(size_t global_size, Shard shard);

 private:
  const Dataset& dataset_;
  size_t global_batch_;
  uint64_t seed_;
  bool shuffle_;
  Shard shard_;
  size_t order_epoch_ = SIZE_MAX;
  std::vector<size_t> order_;
};

}  // namespace cclab::train
