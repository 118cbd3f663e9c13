// Float and byte buffers aligned for vector loads (64 bytes: one cache line, one AVX-512 register).
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace cclab::train {

template <typename T>
struct CacheLineAllocator {
  using value_type = T;
  static constexpr std::align_val_t kAlignment{64};

  CacheLineAllocator() = default;
  template <typename U>
  CacheLineAllocator(const CacheLineAllocator<U>&) {}
  T* allocate(size_t count) { return static_cast<T*>(::operator new(count * sizeof(T), kAlignment)); }
  void deallocate(T* pointer, size_t) { ::operator delete(pointer, kAlignment); }
  template <typename U>
  bool operator==(const CacheLineAllocator<U>&) const { return true; }
};

using FloatBuffer = std::vector<float, CacheLineAllocator<float>>;
using ByteBuffer = std::vector<std::byte, CacheLineAllocator<std::byte>>;

}  // namespace cclab::train
