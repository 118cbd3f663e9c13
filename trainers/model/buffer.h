// Float and byte buffers aligned for vector loads (64 bytes: one cache line, one AVX-512 register),
// in the memory of the run's compute device (compute_device.h): host memory, or memory a GPU shares.
#pragma once

#include <cstddef>
#include <vector>

#include "model/compute_device.h"

namespace cclab::train {

template <typename T>
struct CacheLineAllocator {
  using value_type = T;
  CacheLineAllocator() = default;
  template <typename U>
  CacheLineAllocator(const CacheLineAllocator<U>&) {}
  T* allocate(size_t count) { return static_cast<T*>(allocate_buffer(count * sizeof(T))); }
  void deallocate(T* pointer, size_t) { release_buffer(pointer); }
  template <typename U>
  bool operator==(const CacheLineAllocator<U>&) const { return true; }
};

using FloatBuffer = std::vector<float, CacheLineAllocator<float>>;
using ByteBuffer = std::vector<std::byte, CacheLineAllocator<std::byte>>;

}  // namespace cclab::train
