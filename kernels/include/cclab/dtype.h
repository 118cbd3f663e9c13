// Element types and reduction operators shared by kernels, schedules and drivers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cclab {

enum class DataType : uint8_t { f32, f64, f16, bf16, i32, i64, u8 };
enum class ReduceOp : uint8_t { sum, prod, min, max, avg };

inline constexpr DataType kAllDataTypes[] = {DataType::f32, DataType::f64, DataType::f16, DataType::bf16,
                                             DataType::i32, DataType::i64, DataType::u8};
inline constexpr ReduceOp kAllReduceOps[] = {ReduceOp::sum, ReduceOp::prod, ReduceOp::min, ReduceOp::max,
                                             ReduceOp::avg};

/// Size of one element in bytes.
size_t dtype_size(DataType type);
/// Short name as used on the command line and in results: "f32", "bf16", ...
std::string_view dtype_name(DataType type);
std::string_view op_name(ReduceOp op);
/// Accepts the short names and the nccl-tests spellings ("float", "half", "int32", ...).
std::optional<DataType> parse_dtype(std::string_view text);
std::optional<ReduceOp> parse_op(std::string_view text);
bool is_floating(DataType type);
/// Unit roundoff of the type (2^-24 for f32); 0 for integers.
double dtype_epsilon(DataType type);

// Half-precision conversions (round to nearest even); bf16 and f16 are computed in f32.
float f16_to_f32(uint16_t bits);
uint16_t f32_to_f16(float value);
float bf16_to_f32(uint16_t bits);
uint16_t f32_to_bf16(float value);

}  // namespace cclab
