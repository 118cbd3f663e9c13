// Tests of the element types (names, 16-bit float conversions) and the CPU reduce kernels, which
// are compared bit for bit with a straightforward scalar reference.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "cclab/dtype.h"
#include "cclab/reduce.h"

namespace cclab {
namespace {

using Bytes = std::vector<unsigned char>;

constexpr float kInf = std::numeric_limits<float>::infinity();

// ---------------------------------------------------------------------------------------------
// Names

TEST(DataTypeTest, NamesRoundTrip) {
  for (DataType type : kAllDataTypes) {
    EXPECT_EQ(parse_dtype(dtype_name(type)), type) << dtype_name(type);
  }
  for (ReduceOp op : kAllReduceOps) {
    EXPECT_EQ(parse_op(op_name(op)), op) << op_name(op);
  }
  EXPECT_EQ(dtype_name(DataType::f32), "f32");
  EXPECT_EQ(dtype_name(DataType::bf16), "bf16");
  EXPECT_EQ(dtype_name(DataType::u8), "u8");
  EXPECT_EQ(op_name(ReduceOp::avg), "avg");
  EXPECT_EQ(op_name(ReduceOp::prod), "prod");
}

TEST(DataTypeTest, ParsesNcclTestsSpellings) {
  const std::pair<const char*, DataType> spellings[] = {
      {"float", DataType::f32},   {"float32", DataType::f32},   {"fp32", DataType::f32},
      {"double", DataType::f64},  {"float64", DataType::f64},   {"half", DataType::f16},
      {"float16", DataType::f16}, {"bfloat16", DataType::bf16}, {"int32", DataType::i32},
      {"int", DataType::i32},     {"int64", DataType::i64},     {"uint8", DataType::u8},
      {"char", DataType::u8},
  };
  for (const auto& [text, type] : spellings) {
    EXPECT_EQ(parse_dtype(text), type) << text;
  }
  for (const char* text : {"", "f31", "int8", "uint64", "float ", "all"}) {
    EXPECT_EQ(parse_dtype(text), std::nullopt) << text;
  }
  for (const char* text : {"", "mean", "mulsum", "all", "Sum"}) {
    EXPECT_EQ(parse_op(text), std::nullopt) << text;
  }
}

TEST(DataTypeTest, SizesAndEpsilons) {
  EXPECT_EQ(dtype_size(DataType::f32), 4u);
  EXPECT_EQ(dtype_size(DataType::f64), 8u);
  EXPECT_EQ(dtype_size(DataType::f16), 2u);
  EXPECT_EQ(dtype_size(DataType::bf16), 2u);
  EXPECT_EQ(dtype_size(DataType::i32), 4u);
  EXPECT_EQ(dtype_size(DataType::i64), 8u);
  EXPECT_EQ(dtype_size(DataType::u8), 1u);

  EXPECT_EQ(dtype_epsilon(DataType::f32), std::ldexp(1.0, -24));
  EXPECT_EQ(dtype_epsilon(DataType::f64), std::ldexp(1.0, -53));
  EXPECT_EQ(dtype_epsilon(DataType::f16), std::ldexp(1.0, -11));
  EXPECT_EQ(dtype_epsilon(DataType::bf16), std::ldexp(1.0, -8));
  for (DataType type : {DataType::i32, DataType::i64, DataType::u8}) {
    EXPECT_FALSE(is_floating(type));
    EXPECT_EQ(dtype_epsilon(type), 0.0);
  }
  for (DataType type : {DataType::f32, DataType::f64, DataType::f16, DataType::bf16}) {
    EXPECT_TRUE(is_floating(type));
  }
}

TEST(DataTypeTest, RejectsInvalidEnumValues) {
  EXPECT_THROW(dtype_size(static_cast<DataType>(42)), std::invalid_argument);
  EXPECT_THROW(op_name(static_cast<ReduceOp>(42)), std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------
// 16-bit float conversions

float bits_to_float(uint32_t bits) { return std::bit_cast<float>(bits); }

bool is_f16_nan(uint16_t bits) { return (bits & 0x7c00) == 0x7c00 && (bits & 0x3ff) != 0; }
bool is_bf16_nan(uint16_t bits) { return (bits & 0x7f80) == 0x7f80 && (bits & 0x7f) != 0; }

TEST(HalfTest, F16ExactValues) {
  EXPECT_EQ(f16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(f16_to_f32(0xc000), -2.0f);
  EXPECT_EQ(f16_to_f32(0x7bff), 65504.0f);
  EXPECT_EQ(f16_to_f32(0x0400), std::ldexp(1.0f, -14));  // smallest normal
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(f16_to_f32(0x03ff), std::ldexp(1023.0f, -24));
  EXPECT_EQ(f16_to_f32(0x7c00), kInf);
  EXPECT_EQ(f16_to_f32(0xfc00), -kInf);
  EXPECT_EQ(std::bit_cast<uint32_t>(f16_to_f32(0x8000)), 0x80000000u);
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7e00)));
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7c01)));  // signaling NaN stays NaN, quieted

  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(kInf), 0x7c00);
  EXPECT_EQ(f32_to_f16(-kInf), 0xfc00);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);
}

TEST(HalfTest, F16RoundsToNearestEven) {
  // Halfway between 1 and 1 + 2^-10: ties to the even mantissa.
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  EXPECT_EQ(f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_EQ(f32_to_f16(std::nextafter(1.0f + std::ldexp(1.0f, -11), 2.0f)), 0x3c01);
  EXPECT_EQ(f32_to_f16(-(1.0f + std::ldexp(1.0f, -11))), 0xbc00);
  // Overflow: 65520 is halfway from 65504 to 2^16 and rounds to even, which is infinity.
  EXPECT_EQ(f32_to_f16(65519.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);
  EXPECT_EQ(f32_to_f16(-1e10f), 0xfc00);
  EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::max()), 0x7c00);
  // Subnormal results: units of 2^-24.
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);  // tie to even (zero)
  EXPECT_EQ(f32_to_f16(std::ldexp(3.0f, -25)), 0x0002);  // tie to even (two)
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f + 0x1p-10f, -25)), 0x0001);
  EXPECT_EQ(f32_to_f16(-std::ldexp(1.0f, -26)), 0x8000);
  EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::denorm_min()), 0x0000);
  // Halfway between the largest subnormal and the smallest normal rounds up to the normal.
  EXPECT_EQ(f32_to_f16(std::ldexp(2047.0f, -25)), 0x0400);
}

TEST(HalfTest, F16NanStaysNan) {
  EXPECT_EQ(f32_to_f16(bits_to_float(0x7fc00000)), 0x7e00);
  EXPECT_EQ(f32_to_f16(bits_to_float(0xffc00000)), 0xfe00);
  // A signaling NaN whose payload lies below the kept bits must not become infinity.
  EXPECT_EQ(f32_to_f16(bits_to_float(0x7f800001)), 0x7e00);
  EXPECT_EQ(f32_to_f16(bits_to_float(0x7fa02000)), 0x7f01);
}

TEST(HalfTest, F16EveryValueRoundTrips) {
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    const auto half = static_cast<uint16_t>(bits);
    const float value = f16_to_f32(half);
    if (is_f16_nan(half)) {
      EXPECT_TRUE(std::isnan(value)) << std::hex << bits;
      EXPECT_TRUE(is_f16_nan(f32_to_f16(value))) << std::hex << bits;
    } else {
      EXPECT_EQ(f32_to_f16(value), half) << std::hex << bits;
    }
  }
}

// For every pair of adjacent finite halves (of both signs), the f32 midpoint (exact: it needs one
// more bit) rounds to the even one and its f32 neighbours round to the nearer one.
TEST(HalfTest, F16EveryMidpointRoundsToEven) {
  for (uint16_t sign : {0x0000, 0x8000}) {
    for (uint16_t magnitude = 0; magnitude < 0x7bff; ++magnitude) {
      const auto low = static_cast<uint16_t>(sign | magnitude);
      const auto high = static_cast<uint16_t>(low + 1);
      const float midpoint = (f16_to_f32(low) + f16_to_f32(high)) / 2;
      const float away = sign ? -kInf : kInf;
      ASSERT_EQ(f32_to_f16(midpoint), (low & 1) ? high : low) << std::hex << low;
      ASSERT_EQ(f32_to_f16(std::nextafter(midpoint, away)), high) << std::hex << low;
      ASSERT_EQ(f32_to_f16(std::nextafter(midpoint, 0.0f)), low) << std::hex << low;
    }
  }
}

TEST(HalfTest, Bf16ExactValuesAndRounding) {
  EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
  EXPECT_EQ(bf16_to_f32(0xc040), -3.0f);
  EXPECT_EQ(bf16_to_f32(0x7f80), kInf);
  EXPECT_EQ(bf16_to_f32(0x0001), bits_to_float(0x00010000));  // subnormal
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(-kInf), 0xff80);
  // Halfway between 1 and 1 + 2^-7 ties to even; just above rounds up.
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
  EXPECT_EQ(f32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  EXPECT_EQ(f32_to_bf16(std::nextafter(1.0f + std::ldexp(1.0f, -8), 2.0f)), 0x3f81);
  // Past the largest bf16 (0x7f7f), halfway and above, is infinity.
  EXPECT_EQ(f32_to_bf16(bits_to_float(0x7f7f7fff)), 0x7f7f);
  EXPECT_EQ(f32_to_bf16(bits_to_float(0x7f7f8000)), 0x7f80);
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::max()), 0x7f80);
  EXPECT_EQ(f32_to_bf16(-std::numeric_limits<float>::max()), 0xff80);
  // NaN stays NaN even where rounding would carry into infinity.
  EXPECT_EQ(f32_to_bf16(bits_to_float(0x7fc00000)), 0x7fc0);
  EXPECT_TRUE(is_bf16_nan(f32_to_bf16(bits_to_float(0x7f800001))));
  EXPECT_TRUE(is_bf16_nan(f32_to_bf16(bits_to_float(0x7fffffff))));
  EXPECT_TRUE(is_bf16_nan(f32_to_bf16(bits_to_float(0xff80ffff))));
}

TEST(HalfTest, Bf16EveryValueRoundTripsAndMidpointsRoundToEven) {
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    const auto half = static_cast<uint16_t>(bits);
    const float value = bf16_to_f32(half);
    EXPECT_EQ(std::bit_cast<uint32_t>(value), bits << 16);
    if (is_bf16_nan(half)) {
      EXPECT_TRUE(is_bf16_nan(f32_to_bf16(value))) << std::hex << bits;
      continue;
    }
    EXPECT_EQ(f32_to_bf16(value), half) << std::hex << bits;
    if ((half & 0x7fff) < 0x7f7f) {
      const auto high = static_cast<uint16_t>(half + 1);
      const float midpoint = bits_to_float((bits << 16) | 0x8000);
      const float away = (half & 0x8000) ? -kInf : kInf;
      ASSERT_EQ(f32_to_bf16(midpoint), (half & 1) ? high : half) << std::hex << bits;
      ASSERT_EQ(f32_to_bf16(std::nextafter(midpoint, away)), high) << std::hex << bits;
      ASSERT_EQ(f32_to_bf16(std::nextafter(midpoint, 0.0f)), half) << std::hex << bits;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Scalar reference

// min/max as documented in reduce.cc: NaN propagates (the first NaN operand), equal operands
// (such as -0 and +0) give the second operand.
template <class T>
T reference_min(T x, T y) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(x)) return x;
    if (std::isnan(y)) return y;
  }
  return x < y ? x : y;
}

template <class T>
T reference_max(T x, T y) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(x)) return x;
    if (std::isnan(y)) return y;
  }
  return x > y ? x : y;
}

template <class T>
T reference_float_op(ReduceOp op, T x, T y, int divisor) {
  switch (op) {
    case ReduceOp::sum:
      return x + y;
    case ReduceOp::prod:
      return x * y;
    case ReduceOp::min:
      return reference_min(x, y);
    case ReduceOp::max:
      return reference_max(x, y);
    case ReduceOp::avg:
      return divisor > 1 ? (x + y) / static_cast<T>(divisor) : x + y;
  }
  throw std::logic_error("unreachable");
}

// Integers: sums and products modulo 2^bits, computed in 128 bits and truncated (two's
// complement conversion is well defined in C++20); averages divide the wrapped sum, truncating.
template <class T>
T reference_integer_op(ReduceOp op, T x, T y, int divisor) {
  const __int128 wide_x = x;
  const __int128 wide_y = y;
  switch (op) {
    case ReduceOp::sum:
      return static_cast<T>(wide_x + wide_y);
    case ReduceOp::prod:
      return static_cast<T>(static_cast<T>(wide_x * wide_y));
    case ReduceOp::min:
      return std::min(x, y);
    case ReduceOp::max:
      return std::max(x, y);
    case ReduceOp::avg:
      return static_cast<T>(static_cast<T>(wide_x + wide_y) / static_cast<__int128>(divisor));
  }
  throw std::logic_error("unreachable");
}

template <class T>
T load(const Bytes& bytes, size_t index) {
  T value;
  std::memcpy(&value, bytes.data() + index * sizeof(T), sizeof(T));
  return value;
}

template <class T>
void store(Bytes& bytes, size_t index, T value) {
  std::memcpy(bytes.data() + index * sizeof(T), &value, sizeof(T));
}

template <class T>
void reference_native(Bytes& out, const Bytes& a, const Bytes& b, size_t count, ReduceOp op, int divisor) {
  for (size_t i = 0; i < count; ++i) {
    const T x = load<T>(a, i);
    const T y = load<T>(b, i);
    if constexpr (std::is_floating_point_v<T>) {
      store(out, i, reference_float_op(op, x, y, divisor));
    } else {
      store(out, i, reference_integer_op(op, x, y, divisor));
    }
  }
}

template <float (*widen)(uint16_t), uint16_t (*narrow)(float)>
void reference_half(Bytes& out, const Bytes& a, const Bytes& b, size_t count, ReduceOp op, int divisor) {
  for (size_t i = 0; i < count; ++i) {
    const float x = widen(load<uint16_t>(a, i));
    const float y = widen(load<uint16_t>(b, i));
    store(out, i, narrow(reference_float_op(op, x, y, divisor)));
  }
}

Bytes reference_reduce(const Bytes& a, const Bytes& b, size_t count, DataType type, ReduceOp op,
                       int divisor) {
  Bytes out(count * dtype_size(type));
  switch (type) {
    case DataType::f32:
      reference_native<float>(out, a, b, count, op, divisor);
      break;
    case DataType::f64:
      reference_native<double>(out, a, b, count, op, divisor);
      break;
    case DataType::f16:
      reference_half<f16_to_f32, f32_to_f16>(out, a, b, count, op, divisor);
      break;
    case DataType::bf16:
      reference_half<bf16_to_f32, f32_to_bf16>(out, a, b, count, op, divisor);
      break;
    case DataType::i32:
      reference_native<int32_t>(out, a, b, count, op, divisor);
      break;
    case DataType::i64:
      reference_native<int64_t>(out, a, b, count, op, divisor);
      break;
    case DataType::u8:
      reference_native<uint8_t>(out, a, b, count, op, divisor);
      break;
  }
  return out;
}

std::string element_to_string(const Bytes& bytes, size_t index, DataType type) {
  std::ostringstream text;
  switch (type) {
    case DataType::f32:
      text << load<float>(bytes, index);
      break;
    case DataType::f64:
      text << load<double>(bytes, index);
      break;
    case DataType::f16:
      text << f16_to_f32(load<uint16_t>(bytes, index)) << " (0x" << std::hex << load<uint16_t>(bytes, index)
           << ")";
      break;
    case DataType::bf16:
      text << bf16_to_f32(load<uint16_t>(bytes, index)) << " (0x" << std::hex << load<uint16_t>(bytes, index)
           << ")";
      break;
    case DataType::i32:
      text << load<int32_t>(bytes, index);
      break;
    case DataType::i64:
      text << load<int64_t>(bytes, index);
      break;
    case DataType::u8:
      text << static_cast<int>(load<uint8_t>(bytes, index));
      break;
  }
  return text.str();
}

/// Empty if the first `count` elements are bitwise equal, else a description of the first mismatch.
std::string first_mismatch(const Bytes& actual, const Bytes& expected, size_t count, DataType type) {
  const size_t size = dtype_size(type);
  for (size_t i = 0; i < count; ++i) {
    if (std::memcmp(actual.data() + i * size, expected.data() + i * size, size) != 0) {
      return "element " + std::to_string(i) + ": got " + element_to_string(actual, i, type) + ", expected " +
             element_to_string(expected, i, type);
    }
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Test data: random finite values of every magnitude, with zeros of both signs, subnormals and
// integer extremes mixed in. No NaNs: which NaN payload an operation returns is not specified.

Bytes random_values(DataType type, size_t count, std::mt19937_64& rng) {
  Bytes bytes(count * dtype_size(type));
  std::uniform_real_distribution<double> mantissa(-1.0, 1.0);
  std::uniform_int_distribution<int> exponent(-30, 30);
  std::uniform_int_distribution<int> pick(0, 15);
  for (size_t i = 0; i < count; ++i) {
    const int special = pick(rng);
    const uint64_t random_bits = rng();
    switch (type) {
      case DataType::f32: {
        const float specials[] = {0.0f, -0.0f, std::numeric_limits<float>::denorm_min(), 1e30f};
        store(bytes, i,
              special < 4 ? specials[special] : static_cast<float>(std::ldexp(mantissa(rng), exponent(rng))));
        break;
      }
      case DataType::f64: {
        const double specials[] = {0.0, -0.0, std::numeric_limits<double>::denorm_min(), 1e300};
        store(bytes, i, special < 4 ? specials[special] : std::ldexp(mantissa(rng), exponent(rng)));
        break;
      }
      case DataType::f16:
      case DataType::bf16: {
        // Any finite bit pattern: exponent field below all-ones.
        const uint16_t exponent_mask = type == DataType::f16 ? 0x7c00 : 0x7f80;
        auto bits = static_cast<uint16_t>(random_bits);
        if ((bits & exponent_mask) == exponent_mask) bits = static_cast<uint16_t>(bits & ~0x4000);
        store(bytes, i, bits);
        break;
      }
      case DataType::i32: {
        const int32_t specials[] = {0, -1, std::numeric_limits<int32_t>::max(),
                                    std::numeric_limits<int32_t>::min()};
        store(bytes, i, special < 4 ? specials[special] : static_cast<int32_t>(random_bits) >> (rng() % 32));
        break;
      }
      case DataType::i64: {
        const int64_t specials[] = {0, -1, std::numeric_limits<int64_t>::max(),
                                    std::numeric_limits<int64_t>::min()};
        store(bytes, i, special < 4 ? specials[special] : static_cast<int64_t>(random_bits) >> (rng() % 64));
        break;
      }
      case DataType::u8:
        store(bytes, i, static_cast<uint8_t>(random_bits));
        break;
    }
  }
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// reduce() against the reference: every dtype x op, every aliasing form, odd counts, unaligned
// buffers and avg divisors.

enum class Aliasing { none, dst_is_a, dst_is_b, all_same };

const char* aliasing_name(Aliasing aliasing) {
  switch (aliasing) {
    case Aliasing::none:
      return "dst distinct";
    case Aliasing::dst_is_a:
      return "dst == a";
    case Aliasing::dst_is_b:
      return "dst == b";
    case Aliasing::all_same:
      return "dst == a == b";
  }
  return "?";
}

class ReduceTest : public ::testing::TestWithParam<std::tuple<DataType, ReduceOp>> {};

TEST_P(ReduceTest, MatchesScalarReference) {
  const auto [type, op] = GetParam();
  const size_t size = dtype_size(type);
  // Small and odd counts exercise the scalar tails, 1000 and 1100 the vector loops with every tail.
  const size_t counts[] = {0, 1, 7, 33, 1000, 1100};
  const int divisors[] = {1, 2, 3, 7, 300};
  constexpr size_t kGuard = 16;  // elements after dst that must stay untouched
  const unsigned char kGuardByte = 0xa5;
  std::mt19937_64 rng(1234);

  for (size_t count : counts) {
    for (size_t offset : {0, 1}) {  // offset 1 leaves the buffers unaligned for vector loads
      const Bytes a = random_values(type, count, rng);
      const Bytes b = random_values(type, count, rng);
      for (int divisor : divisors) {
        if (divisor != 1 && op != ReduceOp::avg) continue;
        for (KernelLevel level : supported_kernel_levels())
        for (Aliasing aliasing :
             {Aliasing::none, Aliasing::dst_is_a, Aliasing::dst_is_b, Aliasing::all_same}) {
          const Bytes& second = aliasing == Aliasing::all_same ? a : b;
          const Bytes expected = reference_reduce(a, second, count, type, op, divisor);

          const size_t bytes = count * size;
          Bytes storage_dst((offset + count + kGuard) * size, kGuardByte);
          Bytes storage_a((offset + count) * size);
          Bytes storage_b((offset + count) * size);
          unsigned char* dst = storage_dst.data() + offset * size;
          unsigned char* in_a = storage_a.data() + offset * size;
          unsigned char* in_b = storage_b.data() + offset * size;
          if (count > 0) {
            std::memcpy(in_a, a.data(), bytes);
            std::memcpy(in_b, b.data(), bytes);
          }
          const void* arg_a = in_a;
          const void* arg_b = in_b;
          switch (aliasing) {
            case Aliasing::none:
              break;
            case Aliasing::dst_is_a:
              if (count > 0) std::memcpy(dst, a.data(), bytes);
              arg_a = dst;
              break;
            case Aliasing::dst_is_b:
              if (count > 0) std::memcpy(dst, b.data(), bytes);
              arg_b = dst;
              break;
            case Aliasing::all_same:
              if (count > 0) std::memcpy(dst, a.data(), bytes);
              arg_a = dst;
              arg_b = dst;
              break;
          }

          reduce(level, dst, arg_a, arg_b, count, type, op, divisor);

          SCOPED_TRACE(std::string(kernel_level_name(level)) + " kernels, " + std::string(dtype_name(type)) + " " +
                       std::string(op_name(op)) + ", count " +
                       std::to_string(count) + ", offset " + std::to_string(offset) + ", divisor " +
                       std::to_string(divisor) + ", " + aliasing_name(aliasing));
          const Bytes actual(dst, dst + bytes);
          EXPECT_EQ(first_mismatch(actual, expected, count, type), "");
          for (size_t i = 0; i < kGuard * size; ++i) {
            ASSERT_EQ(dst[bytes + i], kGuardByte) << "wrote past the end, byte " << i;
          }
          if (aliasing == Aliasing::none) {
            EXPECT_TRUE(count == 0 || std::memcmp(in_a, a.data(), bytes) == 0) << "modified a";
            EXPECT_TRUE(count == 0 || std::memcmp(in_b, b.data(), bytes) == 0) << "modified b";
          }
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypesAndOps, ReduceTest,
                         ::testing::Combine(::testing::ValuesIn(kAllDataTypes),
                                            ::testing::ValuesIn(kAllReduceOps)),
                         [](const auto& info) {
                           return std::string(dtype_name(std::get<0>(info.param))) + "_" +
                                  std::string(op_name(std::get<1>(info.param)));
                         });

// ---------------------------------------------------------------------------------------------
// Specific values

template <class T>
std::vector<T> reduce_values(const std::vector<T>& a, const std::vector<T>& b, DataType type, ReduceOp op,
                             int divisor = 1) {
  std::vector<T> out(a.size());
  reduce(out.data(), a.data(), b.data(), a.size(), type, op, divisor);
  return out;
}

TEST(ReduceValuesTest, IntegersWrap) {
  using U8 = std::vector<uint8_t>;
  EXPECT_EQ(reduce_values<uint8_t>({200, 255, 1}, {100, 1, 2}, DataType::u8, ReduceOp::sum), (U8{44, 0, 3}));
  EXPECT_EQ(reduce_values<uint8_t>({16, 255, 3}, {16, 255, 5}, DataType::u8, ReduceOp::prod), (U8{0, 1, 15}));
  // avg divides the wrapped sum: (200 + 100) mod 256 = 44.
  EXPECT_EQ(reduce_values<uint8_t>({200, 7, 9}, {100, 0, 0}, DataType::u8, ReduceOp::avg, 2), (U8{22, 3, 4}));
  EXPECT_EQ(reduce_values<uint8_t>({255}, {0}, DataType::u8, ReduceOp::avg, 256), (U8{0}));

  constexpr int32_t kMax32 = std::numeric_limits<int32_t>::max();
  constexpr int32_t kMin32 = std::numeric_limits<int32_t>::min();
  using I32 = std::vector<int32_t>;
  EXPECT_EQ(reduce_values<int32_t>({kMax32, kMin32}, {1, -1}, DataType::i32, ReduceOp::sum),
            (I32{kMin32, kMax32}));
  EXPECT_EQ(reduce_values<int32_t>({65536, kMin32}, {65536, -1}, DataType::i32, ReduceOp::prod),
            (I32{0, kMin32}));
  // Truncation toward zero, including negative sums and a sum that wrapped.
  EXPECT_EQ(reduce_values<int32_t>({-7, 7, kMax32}, {0, 0, 1}, DataType::i32, ReduceOp::avg, 2),
            (I32{-3, 3, kMin32 / 2}));
  EXPECT_EQ(reduce_values<int32_t>({kMax32, kMin32}, {0, 0}, DataType::i32, ReduceOp::avg, kMax32),
            (I32{1, -1}));

  constexpr int64_t kMax64 = std::numeric_limits<int64_t>::max();
  constexpr int64_t kMin64 = std::numeric_limits<int64_t>::min();
  using I64 = std::vector<int64_t>;
  EXPECT_EQ(reduce_values<int64_t>({kMax64}, {1}, DataType::i64, ReduceOp::sum), (I64{kMin64}));
  EXPECT_EQ(reduce_values<int64_t>({int64_t{1} << 32}, {int64_t{1} << 32}, DataType::i64, ReduceOp::prod),
            (I64{0}));
  EXPECT_EQ(reduce_values<int64_t>({kMax64, -9}, {0, 0}, DataType::i64, ReduceOp::avg, 4),
            (I64{kMax64 / 4, -2}));
}

TEST(ReduceValuesTest, FloatAverageDividesOnlyWithDivisor) {
  using F = std::vector<float>;
  EXPECT_EQ(reduce_values<float>({1, 2}, {2, 4}, DataType::f32, ReduceOp::avg), (F{3, 6}));
  EXPECT_EQ(reduce_values<float>({1, 2}, {2, 4}, DataType::f32, ReduceOp::avg, 1), (F{3, 6}));
  EXPECT_EQ(reduce_values<float>({1, 2}, {2, 4}, DataType::f32, ReduceOp::avg, 4), (F{0.75f, 1.5f}));
  EXPECT_EQ(reduce_values<double>({1}, {0}, DataType::f64, ReduceOp::avg, 3), (std::vector<double>{1.0 / 3}));
  // Non-avg operators ignore the divisor.
  EXPECT_EQ(reduce_values<float>({1}, {2}, DataType::f32, ReduceOp::sum, 4), (F{3}));
}

template <class T>
void expect_inf_nan_rules(DataType type, T (*from_float)(float), float (*to_float)(T)) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<T> a = {from_float(kInf), from_float(kInf),  from_float(nan), from_float(1),
                            from_float(nan),  from_float(-0.0f), from_float(2)};
  const std::vector<T> b = {from_float(-kInf), from_float(1),    from_float(1),   from_float(nan),
                            from_float(nan),   from_float(0.0f), from_float(kInf)};
  const std::vector<T> sum = reduce_values(a, b, type, ReduceOp::sum);
  EXPECT_TRUE(std::isnan(to_float(sum[0])));
  EXPECT_EQ(to_float(sum[1]), kInf);
  EXPECT_TRUE(std::isnan(to_float(sum[2])));
  EXPECT_TRUE(std::isnan(to_float(sum[3])));
  EXPECT_EQ(to_float(sum[6]), kInf);
  for (ReduceOp op : {ReduceOp::min, ReduceOp::max}) {
    SCOPED_TRACE(op_name(op));
    const std::vector<T> result = reduce_values(a, b, type, op);
    EXPECT_EQ(to_float(result[0]), op == ReduceOp::min ? -kInf : kInf);
    EXPECT_EQ(to_float(result[1]), op == ReduceOp::min ? 1.0f : kInf);
    // NaN in either position propagates.
    EXPECT_TRUE(std::isnan(to_float(result[2])));
    EXPECT_TRUE(std::isnan(to_float(result[3])));
    EXPECT_TRUE(std::isnan(to_float(result[4])));
    // Equal zeros: the second operand.
    EXPECT_FALSE(std::signbit(to_float(result[5])));
    EXPECT_EQ(to_float(result[6]), op == ReduceOp::min ? 2.0f : kInf);
  }
  const std::vector<T> product = reduce_values(a, b, type, ReduceOp::prod);
  EXPECT_EQ(to_float(product[0]), -kInf);
  EXPECT_TRUE(std::isnan(to_float(product[2])));
  EXPECT_EQ(to_float(product[5]), 0.0f);
  EXPECT_TRUE(std::signbit(to_float(product[5])));
}

TEST(ReduceValuesTest, InfinityAndNanFollowIeeeAndMinMaxPropagateNan) {
  {
    SCOPED_TRACE("f32");
    expect_inf_nan_rules<float>(
        DataType::f32, [](float x) { return x; }, [](float x) { return x; });
  }
  {
    SCOPED_TRACE("f64");
    expect_inf_nan_rules<double>(
        DataType::f64, [](float x) { return double{x}; }, [](double x) { return static_cast<float>(x); });
  }
  {
    SCOPED_TRACE("f16");
    expect_inf_nan_rules<uint16_t>(DataType::f16, f32_to_f16, f16_to_f32);
  }
  {
    SCOPED_TRACE("bf16");
    expect_inf_nan_rules<uint16_t>(DataType::bf16, f32_to_bf16, bf16_to_f32);
  }
}

TEST(ReduceValuesTest, HalfResultsRoundToNearestEven) {
  // 1 + (1 + 2^-10) = 2 + 2^-10 lies halfway between two f16 values (spacing 2^-9 above 2): even.
  EXPECT_EQ(reduce_values<uint16_t>({0x3c00}, {0x3c01}, DataType::f16, ReduceOp::sum),
            (std::vector<uint16_t>{0x4000}));
  EXPECT_EQ(reduce_values<uint16_t>({0x3c00}, {0x3c03}, DataType::f16, ReduceOp::sum),
            (std::vector<uint16_t>{0x4002}));
  EXPECT_EQ(reduce_values<uint16_t>({0x7bff}, {0x5000}, DataType::f16, ReduceOp::sum),
            (std::vector<uint16_t>{0x7c00}));
  EXPECT_EQ(reduce_values<uint16_t>({0x3f80}, {0x3f81}, DataType::bf16, ReduceOp::sum),
            (std::vector<uint16_t>{0x4000}));
  EXPECT_EQ(reduce_values<uint16_t>({0x3f80}, {0x3f83}, DataType::bf16, ReduceOp::sum),
            (std::vector<uint16_t>{0x4002}));
}

// The kernels convert 16-bit floats with their own vectorized code (F16C instructions where the CPU
// has them); every input bit pattern, NaNs included, must give the same bits as the scalar
// conversions. (An operation with one NaN operand returns that NaN, quieted, so the scalar
// reference predicts NaN results exactly.)
TEST(ReduceValuesTest, HalfKernelsAgreeWithScalarConversionsOnEveryValue) {
  struct Half {
    DataType type;
    float (*widen)(uint16_t);
    uint16_t (*narrow)(float);
  };
  for (const Half& half :
       {Half{DataType::f16, f16_to_f32, f32_to_f16}, Half{DataType::bf16, bf16_to_f32, f32_to_bf16}}) {
    SCOPED_TRACE(dtype_name(half.type));
    std::vector<uint16_t> all(0x10000);
    for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint16_t>(i);
    const std::vector<uint16_t> ones(all.size(), half.narrow(1.0f));
    const std::vector<uint16_t> incremented = reduce_values(all, ones, half.type, ReduceOp::sum);
    for (size_t i = 0; i < all.size(); ++i) {
      ASSERT_EQ(incremented[i], half.narrow(half.widen(all[i]) + 1.0f)) << std::hex << i;
    }
    const std::vector<uint16_t> zeros(all.size(), 0);
    for (int divisor : {1, 3, 10}) {
      const std::vector<uint16_t> averaged = reduce_values(all, zeros, half.type, ReduceOp::avg, divisor);
      for (size_t i = 0; i < all.size(); ++i) {
        // avg adds the zero operand first, which turns -0 into +0.
        const float sum = half.widen(all[i]) + 0.0f;
        const float expected = divisor > 1 ? sum / static_cast<float>(divisor) : sum;
        ASSERT_EQ(averaged[i], half.narrow(expected)) << std::hex << i << " / " << divisor;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// divide()

TEST(DivideTest, DividesEveryType) {
  std::vector<float> f32 = {3, -1, 7.5f};
  divide(f32.data(), f32.size(), DataType::f32, 3);
  EXPECT_EQ(f32, (std::vector<float>{1, -1.0f / 3, 2.5f}));

  std::vector<double> f64 = {1, 9};
  divide(f64.data(), f64.size(), DataType::f64, 3);
  EXPECT_EQ(f64, (std::vector<double>{1.0 / 3, 3}));

  std::vector<uint16_t> f16 = {f32_to_f16(3), f32_to_f16(1)};
  divide(f16.data(), f16.size(), DataType::f16, 3);
  EXPECT_EQ(f16, (std::vector<uint16_t>{f32_to_f16(1), f32_to_f16(1.0f / 3)}));

  std::vector<uint16_t> bf16 = {f32_to_bf16(3), f32_to_bf16(1)};
  divide(bf16.data(), bf16.size(), DataType::bf16, 3);
  EXPECT_EQ(bf16, (std::vector<uint16_t>{f32_to_bf16(1), f32_to_bf16(1.0f / 3)}));

  std::vector<int32_t> i32 = {7, -7, std::numeric_limits<int32_t>::min()};
  divide(i32.data(), i32.size(), DataType::i32, 2);
  EXPECT_EQ(i32, (std::vector<int32_t>{3, -3, std::numeric_limits<int32_t>::min() / 2}));

  std::vector<int64_t> i64 = {std::numeric_limits<int64_t>::max(), -5};
  divide(i64.data(), i64.size(), DataType::i64, 2);
  EXPECT_EQ(i64, (std::vector<int64_t>{std::numeric_limits<int64_t>::max() / 2, -2}));

  std::vector<uint8_t> u8 = {255, 5, 254};
  divide(u8.data(), u8.size(), DataType::u8, 2);
  EXPECT_EQ(u8, (std::vector<uint8_t>{127, 2, 127}));
}

template <class T>
void reference_divide_native(Bytes& values, size_t count, int divisor) {
  for (size_t i = 0; i < count; ++i) {
    if constexpr (std::is_floating_point_v<T>) {
      store(values, i, load<T>(values, i) / static_cast<T>(divisor));
    } else {
      store(values, i, static_cast<T>(static_cast<__int128>(load<T>(values, i)) / divisor));
    }
  }
}

template <float (*widen)(uint16_t), uint16_t (*narrow)(float)>
void reference_divide_half(Bytes& values, size_t count, int divisor) {
  for (size_t i = 0; i < count; ++i) {
    store(values, i, narrow(widen(load<uint16_t>(values, i)) / static_cast<float>(divisor)));
  }
}

Bytes reference_divide(Bytes values, size_t count, DataType type, int divisor) {
  switch (type) {
    case DataType::f32:
      reference_divide_native<float>(values, count, divisor);
      break;
    case DataType::f64:
      reference_divide_native<double>(values, count, divisor);
      break;
    case DataType::f16:
      reference_divide_half<f16_to_f32, f32_to_f16>(values, count, divisor);
      break;
    case DataType::bf16:
      reference_divide_half<bf16_to_f32, f32_to_bf16>(values, count, divisor);
      break;
    case DataType::i32:
      reference_divide_native<int32_t>(values, count, divisor);
      break;
    case DataType::i64:
      reference_divide_native<int64_t>(values, count, divisor);
      break;
    case DataType::u8:
      reference_divide_native<uint8_t>(values, count, divisor);
      break;
  }
  return values;
}

TEST(DivideTest, MatchesReferenceOnLongBuffers) {
  std::mt19937_64 rng(99);
  for (DataType type : kAllDataTypes) {
    for (size_t count : {1, 33, 1000, 1100}) {
      for (int divisor : {2, 7, 1000}) {
        SCOPED_TRACE(std::string(dtype_name(type)) + ", count " + std::to_string(count) + ", divisor " +
                     std::to_string(divisor));
        const Bytes values = random_values(type, count, rng);
        Bytes actual = values;
        divide(actual.data(), count, type, divisor);
        EXPECT_EQ(first_mismatch(actual, reference_divide(values, count, type, divisor), count, type), "");
      }
    }
  }
}

TEST(DivideTest, RejectsDivisorBelowOne) {
  float value = 1;
  EXPECT_THROW(divide(&value, 1, DataType::f32, 0), std::invalid_argument);
  EXPECT_THROW(reduce(&value, &value, &value, 1, DataType::f32, ReduceOp::avg, 0), std::invalid_argument);
  EXPECT_THROW(reduce(&value, &value, &value, 1, static_cast<DataType>(42), ReduceOp::sum),
               std::invalid_argument);
  EXPECT_THROW(reduce(&value, &value, &value, 1, DataType::f32, static_cast<ReduceOp>(42)),
               std::invalid_argument);
  divide(&value, 1, DataType::f32, 1);
  EXPECT_EQ(value, 1.0f);
}

}  // namespace
}  // namespace cclab
