// Counter-based random numbers: a value is a pure function of (seed, stream, index), so any rank can
// produce any element (a weight of a layer slice, a synthetic sample of its shard) without producing
// the ones before it, and results do not depend on the standard library's implementation.
#pragma once

#include <cmath>
#include <cstdint>

namespace cclab::train {

/// SplitMix64 finaliser: a bijective 64-bit mix with good avalanche.
inline uint64_t mix64(uint64_t value) {
  value += 0x9E3779B97F4A7C15ull;
  value = (value ^ (value >> 30)) * 0xBF58476D1CE4E5B9ull;
  value = (value ^ (value >> 27)) * 0x94D049BB133111EBull;
  return value ^ (value >> 31);
}

/// Hash of (seed, stream, index).
inline uint64_t random_bits(uint64_t seed, uint64_t stream, uint64_t index) {
  return mix64(mix64(mix64(seed) ^ stream) ^ index);
}

/// Uniform in [0, 1) with 24 random bits (exactly representable as float).
inline float uniform01(uint64_t bits) { return static_cast<float>(bits >> 40) * (1.0f / 16777216.0f); }

/// Uniform in [0, bound) without modulo bias worth caring about for bound < 2^32.
inline uint64_t uniform_below(uint64_t bits, uint64_t bound) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(bits) * bound) >> 64);
}

/// A sequential generator for shuffles: state advances by one counter step per draw.
class CounterRng {
 public:
  CounterRng(uint64_t seed, uint64_t stream) : seed_(seed), stream_(stream) {}
  uint64_t next() { return random_bits(seed_, stream_, counter_++); }

 private:
  uint64_t seed_, stream_, counter_ = 0;
};

}  // namespace cclab::train
