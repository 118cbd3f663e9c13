// Inputs for checking reduce kernels against each other bit for bit: random elements of a type,
// with the values where kernels most often disagree mixed in (NaNs with payloads, infinities, signed
// zeros, subnormals, values that round to a tie, integer extremes).
#pragma once

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "cclab/dtype.h"

namespace cclab {

inline std::vector<std::byte> reduce_inputs(DataType type, size_t count, uint32_t seed) {
  const size_t size = dtype_size(type);
  std::vector<std::byte> bytes(count * size);
  std::mt19937_64 random(seed);
  for (auto& byte : bytes) byte = std::byte(random() & 0xff);
  // Every fourth element a special value of the type, chosen at random.
  std::vector<uint64_t> specials;
  switch (type) {
    case DataType::f32:
      specials = {0x7fc00000, 0x7f800001, 0xffc12345, 0x7f800000, 0xff800000, 0x80000000, 0, 0x00000001,
                  0x807fffff, 0x3f800000, 0x4b000001, 0x7f7fffff};
      break;
    case DataType::f64:
      specials = {0x7ff8000000000000, 0x7ff0000000000001, 0x7ff0000000000000, 0x8000000000000000, 0, 1,
                  0x3ff0000000000000, 0x7fefffffffffffff};
      break;
    case DataType::f16:
      specials = {0x7e00, 0x7c01, 0xfe3f, 0x7c00, 0xfc00, 0x8000, 0, 1, 0x83ff, 0x3c00, 0x7bff, 0x3c01};
      break;
    case DataType::bf16:
      specials = {0x7fc0, 0x7f81, 0xffc1, 0x7f80, 0xff80, 0x8000, 0, 1, 0x807f, 0x3f80, 0x7f7f, 0x3f81};
      break;
    case DataType::i32:
      specials = {0x7fffffff, 0x80000000, 0xffffffff, 0, 1};
      break;
    case DataType::i64:
      specials = {0x7fffffffffffffff, 0x8000000000000000, 0xffffffffffffffff, 0, 1};
      break;
    case DataType::u8:
      specials = {0xff, 0, 1, 0x80};
      break;
  }
  for (size_t i = 0; i < count; i += 4) {
    const uint64_t value = specials[random() % specials.size()];
    std::memcpy(bytes.data() + i * size, &value, size);  // little-endian: the low bytes
  }
  return bytes;
}

/// The first element where `x` and `y` differ, or `count` when they agree: equal bits, or both
/// NaN. A NaN produced by arithmetic carries the hardware's payload (x86 keeps an operand's, CUDA
/// gives its canonical NaN, and a compiler may swap the operands of a sum), so NaN results are
/// compared as NaN; min and max return an operand, whose bits the callers check as they are.
inline size_t first_difference(DataType type, const std::byte* x, const std::byte* y, size_t count) {
  const size_t size = dtype_size(type);
  const auto is_nan = [&](const std::byte* element) {
    uint64_t bits = 0;
    std::memcpy(&bits, element, size);
    switch (type) {
      case DataType::f32:
        return (bits & 0x7fffffff) > 0x7f800000;
      case DataType::f64:
        return (bits & 0x7fffffffffffffff) > 0x7ff0000000000000;
      case DataType::f16:
        return (bits & 0x7fff) > 0x7c00;
      case DataType::bf16:
        return (bits & 0x7fff) > 0x7f80;
      default:
        return false;
    }
  };
  for (size_t i = 0; i < count; ++i) {
    const std::byte *a = x + i * size, *b = y + i * size;
    if (std::memcmp(a, b, size) != 0 && !(is_nan(a) && is_nan(b))) return i;
  }
  return count;
}

}  // namespace cclab
