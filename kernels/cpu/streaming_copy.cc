#include "cclab/streaming_copy.h"

#include <emmintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace cclab {

void streaming_copy(void* target, const void* source, size_t bytes) {
  auto* to = static_cast<std::byte*>(target);
  const auto* from = static_cast<const std::byte*>(source);
  // Non-temporal stores want an aligned destination: the unaligned head and the tail go by memcpy.
  constexpr size_t kLine = 64;
  const size_t head = std::min(bytes, (kLine - reinterpret_cast<uintptr_t>(to) % kLine) % kLine);
  std::memcpy(to, from, head);
  size_t done = head;
  for (; done + kLine <= bytes; done += kLine)
    for (size_t part = 0; part < kLine; part += sizeof(__m128i))
      _mm_stream_si128(reinterpret_cast<__m128i*>(to + done + part),
                       _mm_loadu_si128(reinterpret_cast<const __m128i*>(from + done + part)));
  std::memcpy(to + done, from + done, bytes - done);
  _mm_sfence();
}

}  // namespace cclab
