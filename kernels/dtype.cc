#include "cclab/dtype.h"

#include <bit>
#include <stdexcept>
#include <string>

namespace cclab {
namespace {

struct DataTypeInfo {
  DataType type;
  std::string_view name;
  size_t size;
  double epsilon;
};

constexpr DataTypeInfo kDataTypeInfo[] = {
    {DataType::f32, "f32", 4, 0x1p-24}, {DataType::f64, "f64", 8, 0x1p-53},
    {DataType::f16, "f16", 2, 0x1p-11}, {DataType::bf16, "bf16", 2, 0x1p-8},
    {DataType::i32, "i32", 4, 0.0},     {DataType::i64, "i64", 8, 0.0},
    {DataType::u8, "u8", 1, 0.0},
};

constexpr std::string_view kOpNames[] = {"sum", "prod", "min", "max", "avg"};

struct Alias {
  std::string_view text;
  DataType type;
};

// Spellings of nccl-tests (-d), NCCL's enum names and the usual fp16/fp32 forms. NCCL's "char" is a
// signed byte; cclab's only byte type is u8, which sums identically (two's complement) but compares
// and averages as unsigned.
constexpr Alias kDataTypeAliases[] = {
    {"float", DataType::f32},     {"float32", DataType::f32}, {"fp32", DataType::f32},
    {"double", DataType::f64},    {"float64", DataType::f64}, {"fp64", DataType::f64},
    {"half", DataType::f16},      {"float16", DataType::f16}, {"fp16", DataType::f16},
    {"bfloat16", DataType::bf16}, {"int", DataType::i32},     {"int32", DataType::i32},
    {"int64", DataType::i64},     {"uint8", DataType::u8},    {"char", DataType::u8},
};

const DataTypeInfo& info(DataType type) {
  const auto index = static_cast<size_t>(type);
  if (index >= std::size(kDataTypeInfo)) {
    throw std::invalid_argument("invalid DataType value " + std::to_string(index));
  }
  return kDataTypeInfo[index];
}

/// value >> shift, rounded to nearest with ties to even (1 <= shift <= 31).
uint32_t shift_right_round_even(uint32_t value, uint32_t shift) {
  const uint32_t half = 1u << (shift - 1);
  const uint32_t remainder = value & ((half << 1) - 1);
  const uint32_t truncated = value >> shift;
  const bool round_up = remainder > half || (remainder == half && (truncated & 1));
  return truncated + round_up;
}

}  // namespace

size_t dtype_size(DataType type) { return info(type).size; }

std::string_view dtype_name(DataType type) { return info(type).name; }

std::string_view op_name(ReduceOp op) {
  const auto index = static_cast<size_t>(op);
  if (index >= std::size(kOpNames)) {
    throw std::invalid_argument("invalid ReduceOp value " + std::to_string(index));
  }
  return kOpNames[index];
}

std::optional<DataType> parse_dtype(std::string_view text) {
  for (const DataTypeInfo& entry : kDataTypeInfo) {
    if (entry.name == text) return entry.type;
  }
  for (const Alias& alias : kDataTypeAliases) {
    if (alias.text == text) return alias.type;
  }
  return std::nullopt;
}

std::optional<ReduceOp> parse_op(std::string_view text) {
  for (ReduceOp op : kAllReduceOps) {
    if (op_name(op) == text) return op;
  }
  return std::nullopt;
}

bool is_floating(DataType type) { return info(type).epsilon != 0.0; }

double dtype_epsilon(DataType type) { return info(type).epsilon; }

// NaNs convert with the quiet bit set and the top payload bits kept, as the F16C instructions do,
// so the scalar and vectorized (F16C) kernels agree bit for bit.
float f16_to_f32(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1f;
  const uint32_t mantissa = bits & 0x3ff;
  if (exponent == 0x1f) {
    const uint32_t quiet = mantissa != 0 ? 0x400000 : 0;
    return std::bit_cast<float>(sign | 0x7f800000 | quiet | mantissa << 13);
  }
  if (exponent != 0) {
    // Rebias the exponent from 15 to 127.
    return std::bit_cast<float>(sign | (exponent + 112) << 23 | mantissa << 13);
  }
  // Zero or subnormal: mantissa * 2^-24, exact in f32.
  const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
  return sign != 0 ? -magnitude : magnitude;
}

uint16_t f32_to_f16(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const auto sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
  const uint32_t magnitude = bits & 0x7fffffff;
  if (magnitude > 0x7f800000) {
    return sign | 0x7e00 | ((magnitude >> 13) & 0x3ff);
  }
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

float bf16_to_f32(uint16_t bits) { return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16); }

uint16_t f32_to_bf16(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  // Rounding could carry a NaN's payload into infinity; keep it a (quiet) NaN instead.
  if ((bits & 0x7fffffff) > 0x7f800000) return static_cast<uint16_t>((bits >> 16) | 0x40);
  // Values past the largest bf16 carry into the exponent and become infinity, as they should.
  return static_cast<uint16_t>(shift_right_round_even(bits, 16));
}

}  // namespace cclab
