#include "cclab/dtype.h"

#include <stdexcept>
#include <string>

#include "cclab/reduce_operators.h"

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

// The conversions are the kernels' own (cclab/reduce_operators.h), so values converted here and
// values the kernels compute agree bit for bit.
float f16_to_f32(uint16_t bits) { return reduce_operators::f16_to_f32(bits); }
uint16_t f32_to_f16(float value) { return reduce_operators::f32_to_f16(value); }
float bf16_to_f32(uint16_t bits) { return reduce_operators::bf16_to_f32(bits); }
uint16_t f32_to_bf16(float value) { return reduce_operators::f32_to_bf16(value); }

}  // namespace cclab
