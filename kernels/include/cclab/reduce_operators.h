// The element operators of the reduce kernels and the 16-bit float conversions, defined once for
// the CPU kernels (kernels/cpu), the CUDA kernels (kernels/cuda) and dtype.cc, so that every
// kernel gives the same bits for the same inputs.
//
// The operators are templates on the value type V: the CPU's f16 kernel applies them to eight f32
// lanes at once (__m256 is a GCC vector type: arithmetic, comparisons and ?: work lane-wise).
#pragma once

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "cclab/dtype.h"

#if defined(__CUDACC__)
#define CCLAB_HOST_DEVICE __host__ __device__
#else
#define CCLAB_HOST_DEVICE
#endif

namespace cclab::reduce_operators {

CCLAB_HOST_DEVICE inline uint32_t float_bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

CCLAB_HOST_DEVICE inline float bits_float(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

template <class V>
CCLAB_HOST_DEVICE auto is_nan(V x) {
  if constexpr (std::is_integral_v<V>) {
    return false;
  } else {
    return x != x;
  }
}

// Integer sums and products wrap modulo 2^bits: they are computed in the unsigned type, because
// signed overflow is undefined behaviour (and u8 operands are promoted to int anyway).
template <class V>
CCLAB_HOST_DEVICE V add(V x, V y) {
  if constexpr (std::is_integral_v<V>) {
    using Unsigned = std::make_unsigned_t<V>;
    return static_cast<V>(static_cast<Unsigned>(x) + static_cast<Unsigned>(y));
  } else {
    return x + y;
  }
}

template <class V>
CCLAB_HOST_DEVICE V multiply(V x, V y) {
  if constexpr (std::is_integral_v<V>) {
    using Unsigned = std::make_unsigned_t<V>;
    return static_cast<V>(static_cast<Unsigned>(x) * static_cast<Unsigned>(y));
  } else {
    return x * y;
  }
}

struct Sum {
  template <class V>
  CCLAB_HOST_DEVICE V operator()(V x, V y) const {
    return add(x, y);
  }
};

struct Prod {
  template <class V>
  CCLAB_HOST_DEVICE V operator()(V x, V y) const {
    return multiply(x, y);
  }
};

// min and max propagate NaN (IEEE 754-2019 minimum/maximum, torch.minimum): if either operand is
// NaN the result is NaN (the first operand when both are), so a NaN on any rank reaches every
// result. Zeros of either sign compare equal and the second operand is returned. (| rather than ||
// because the operands may be vectors.)
struct Min {
  template <class V>
  CCLAB_HOST_DEVICE V operator()(V x, V y) const {
    return (x < y) | is_nan(x) ? x : y;
  }
};

struct Max {
  template <class V>
  CCLAB_HOST_DEVICE V operator()(V x, V y) const {
    return (x > y) | is_nan(x) ? x : y;
  }
};

// Integer averages truncate toward zero. x86 has no SIMD integer division, so u8 and i32 divide in
// double, where the truncated quotient is exact: for |sum| < 2^31 the quotient's rounding error is
// below 1/divisor, the smallest distance from a fractional quotient to an integer, so rounding never
// crosses an integer (and exact quotients stay exact). i64 sums exceed a double's 53 bits and
// divide as integers. Every kernel divides in the same type, so the results agree bit for bit.
template <class T>
using Divisor = std::conditional_t<std::is_same_v<T, int64_t>, int64_t,
                                   std::conditional_t<std::is_same_v<T, float>, float, double>>;

/// The last step of an average: the sum divided by the rank count. T is the computing type.
template <class T>
struct SumDivide {
  Divisor<T> divisor;

  template <class V>
  CCLAB_HOST_DEVICE V operator()(V x, V y) const {
    return static_cast<V>(add(x, y) / divisor);
  }
};

/// divide(): the element divided by the rank count. It runs as a combine whose dst, a and b are all
/// the buffer, so the second operand is the element again.
template <class T>
struct Quotient {
  Divisor<T> divisor;

  template <class V>
  CCLAB_HOST_DEVICE V operator()(V x, V /*same as x*/) const {
    return static_cast<V>(x / divisor);
  }
};

/// std::invalid_argument unless an average's divisor is at least 1 (host code, both kernels' entries).
inline void check_divisor(const char* function, int divisor) {
  if (divisor < 1)
    throw std::invalid_argument(std::string(function) + ": divisor must be >= 1, got " + std::to_string(divisor));
}

/// Calls run(element_op) with the element operator for `op` computing in T (host code: the CPU
/// kernels call it, and the CUDA kernels' launcher, which passes the operator to the device).
template <class T, class Run>
void with_operator(ReduceOp op, int divisor, Run&& run) {
  switch (op) {
    case ReduceOp::sum:
      return run(Sum{});
    case ReduceOp::prod:
      return run(Prod{});
    case ReduceOp::min:
      return run(Min{});
    case ReduceOp::max:
      return run(Max{});
    case ReduceOp::avg:
      if (divisor > 1) return run(SumDivide<T>{static_cast<Divisor<T>>(divisor)});
      return run(Sum{});
  }
  throw std::invalid_argument("invalid ReduceOp value " + std::to_string(static_cast<int>(op)));
}

/// value >> shift, rounded to nearest with ties to even (1 <= shift <= 31).
CCLAB_HOST_DEVICE inline uint32_t shift_right_round_even(uint32_t value, uint32_t shift) {
  const uint32_t half = 1u << (shift - 1);
  const uint32_t remainder = value & ((half << 1) - 1);
  const uint32_t truncated = value >> shift;
  const bool round_up = remainder > half || (remainder == half && (truncated & 1));
  return truncated + round_up;
}

/// An f32 rounded to bf16 (nearest even), left in the high 16 bits with the low 16 bits zero.
/// Rounding could carry a NaN's payload into infinity, so a NaN keeps its top payload bits with
/// the quiet bit set.
CCLAB_HOST_DEVICE inline uint32_t bf16_round_high(float value) {
  const uint32_t bits = float_bits(value);
  const uint32_t rounded = bits + 0x7fff + ((bits >> 16) & 1);
  const uint32_t nan = bits | 0x400000;
  return (is_nan(value) ? nan : rounded) & 0xffff0000;
}

CCLAB_HOST_DEVICE inline float bf16_to_f32(uint16_t bits) { return bits_float(static_cast<uint32_t>(bits) << 16); }

CCLAB_HOST_DEVICE inline uint16_t f32_to_bf16(float value) {
  return static_cast<uint16_t>(bf16_round_high(value) >> 16);
}

// f16: NaNs convert with the quiet bit set and the top payload bits kept, as the x86 F16C
// instructions do, so the scalar, F16C and CUDA kernels agree bit for bit.
CCLAB_HOST_DEVICE inline float f16_to_f32(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1f;
  const uint32_t mantissa = bits & 0x3ff;
  if (exponent == 0x1f) {
    const uint32_t quiet = mantissa != 0 ? 0x400000 : 0;
    return bits_float(sign | 0x7f800000 | quiet | mantissa << 13);
  }
  if (exponent != 0) return bits_float(sign | (exponent + 112) << 23 | mantissa << 13);  // rebias 15 -> 127
  // Zero or subnormal: mantissa * 2^-24, exact in f32.
  const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
  return sign != 0 ? -magnitude : magnitude;
}

CCLAB_HOST_DEVICE inline uint16_t f32_to_f16(float value) {
  const uint32_t bits = float_bits(value);
  const auto sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
  const uint32_t magnitude = bits & 0x7fffffff;
  if (magnitude > 0x7f800000) return sign | 0x7e00 | ((magnitude >> 13) & 0x3ff);
  // 65520 is halfway between the largest half (65504) and 2^16; ties go to even, which is infinity.
  if (magnitude >= 0x477ff000) return sign | 0x7c00;
  if (magnitude >= 0x38800000) {
    // Normal half (>= 2^-14): rebias the exponent from 127 to 15 and round away 13 mantissa bits. A
    // carry out of the mantissa increments the exponent, which is the correctly rounded result.
    return sign | static_cast<uint16_t>(shift_right_round_even(magnitude - (112u << 23), 13));
  }
  // Subnormal half: the result counts units of 2^-24. With the implicit bit restored the f32
  // significand counts units of 2^(exponent - 150), so shift right by 126 - exponent. Below 2^-25
  // (exponent < 102) everything rounds to zero.
  const uint32_t exponent = magnitude >> 23;
  if (exponent < 102) return sign;
  const uint32_t significand = (magnitude & 0x7fffff) | 0x800000;
  return sign | static_cast<uint16_t>(shift_right_round_even(significand, 126 - exponent));
}

// How each element type is stored and computed, for kernels that combine one element at a time
// (the CUDA kernels): apply() combines two stored elements with an operator. The CPU kernels
// vectorize 16-bit floats their own way, with the same conversions.
template <class T>
struct Native {
  using Storage = T;
  using Compute = T;
  template <class Op>
  CCLAB_HOST_DEVICE static T apply(T x, T y, Op op) {
    return op(x, y);
  }
};

struct Half {
  using Storage = uint16_t;
  using Compute = float;
  template <class Op>
  CCLAB_HOST_DEVICE static uint16_t apply(uint16_t x, uint16_t y, Op op) {
    return f32_to_f16(op(f16_to_f32(x), f16_to_f32(y)));
  }
};

struct BFloat {
  using Storage = uint16_t;
  using Compute = float;
  template <class Op>
  CCLAB_HOST_DEVICE static uint16_t apply(uint16_t x, uint16_t y, Op op) {
    return f32_to_bf16(op(bf16_to_f32(x), bf16_to_f32(y)));
  }
};

/// Calls visit(element) with the element description of `type` (host code).
template <class Visit>
void with_element(DataType type, Visit&& visit) {
  switch (type) {
    case DataType::f32:
      return visit(Native<float>{});
    case DataType::f64:
      return visit(Native<double>{});
    case DataType::f16:
      return visit(Half{});
    case DataType::bf16:
      return visit(BFloat{});
    case DataType::i32:
      return visit(Native<int32_t>{});
    case DataType::i64:
      return visit(Native<int64_t>{});
    case DataType::u8:
      return visit(Native<uint8_t>{});
  }
  throw std::invalid_argument("invalid DataType value " + std::to_string(static_cast<int>(type)));
}

}  // namespace cclab::reduce_operators
