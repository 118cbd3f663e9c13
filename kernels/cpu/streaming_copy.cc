#include "cclab/streaming_copy.h"

#include <emmintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <set>
#include <string>

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

namespace {

// "32768K" -> bytes; 0 when unreadable.
size_t parse_cache_size(const std::string& text) {
  size_t end = 0;
  unsigned long long value = 0;
  try {
    value = std::stoull(text, &end);
  } catch (const std::exception&) {
    return 0;
  }
  const char unit = end < text.size() ? text[end] : ' ';
  return size_t(value) * (unit == 'K' ? 1024 : unit == 'M' ? 1024 * 1024 : unit == 'G' ? 1024 * 1024 * 1024 : 1);
}

std::string first_line(const std::string& path) {
  std::ifstream file(path);
  std::string line;
  std::getline(file, line);
  return line;
}

size_t read_last_level_cache_bytes() {
  // Each CPU lists its caches; an instance shared by several CPUs appears under each of them, with
  // the same list of CPUs, so the instances are told apart by that list.
  int deepest = 0;
  std::set<std::string> instances;
  size_t total = 0;
  for (int cpu = 0;; ++cpu) {
    const std::string caches = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/cache/";
    if (!std::ifstream(caches + "index0/level")) break;
    for (int index = 0;; ++index) {
      const std::string dir = caches + "index" + std::to_string(index) + "/";
      const std::string level_text = first_line(dir + "level");
      if (level_text.empty()) break;
      const int level = std::atoi(level_text.c_str());
      if (first_line(dir + "type") == "Instruction" || level < deepest) continue;
      if (level > deepest) deepest = level, instances.clear(), total = 0;
      if (instances.insert(first_line(dir + "shared_cpu_list")).second)
        total += parse_cache_size(first_line(dir + "size"));
    }
  }
  return total;
}

}  // namespace

size_t last_level_cache_bytes() {
  static const size_t bytes = read_last_level_cache_bytes();
  return bytes;
}

}  // namespace cclab
