#include "check.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace cclab {
namespace {

double read_element(const void* buffer, size_t i, DataType type) {
  switch (type) {
    case DataType::f32: return static_cast<const float*>(buffer)[i];
    case DataType::f64: return static_cast<const double*>(buffer)[i];
    case DataType::f16: return f16_to_f32(static_cast<const uint16_t*>(buffer)[i]);
    case DataType::bf16: return bf16_to_f32(static_cast<const uint16_t*>(buffer)[i]);
    case DataType::i32: return static_cast<const int32_t*>(buffer)[i];
    case DataType::i64: return double(static_cast<const int64_t*>(buffer)[i]);
    case DataType::u8: return static_cast<const uint8_t*>(buffer)[i];
  }
  return 0;
}

void write_element(void* buffer, size_t i, DataType type, double value) {
  switch (type) {
    case DataType::f32: static_cast<float*>(buffer)[i] = float(value); break;
    case DataType::f64: static_cast<double*>(buffer)[i] = value; break;
    case DataType::f16: static_cast<uint16_t*>(buffer)[i] = f32_to_f16(float(value)); break;
    case DataType::bf16: static_cast<uint16_t*>(buffer)[i] = f32_to_bf16(float(value)); break;
    case DataType::i32: static_cast<int32_t*>(buffer)[i] = int32_t(value); break;
    case DataType::i64: static_cast<int64_t*>(buffer)[i] = int64_t(value); break;
    case DataType::u8: static_cast<uint8_t*>(buffer)[i] = uint8_t(value); break;
  }
}

// The value as the type stores it (e.g. a product of many 2s overflows f16 to infinity).
double stored_as(DataType type, double value) {
  alignas(8) unsigned char element[8];
  write_element(element, 0, type, value);
  return read_element(element, 0, type);
}

// Integers reduce with the wrap-around of their width, as the kernels do.
uint64_t wrap(uint64_t value, DataType type) {
  switch (type) {
    case DataType::u8: return value & 0xFF;
    case DataType::i32: return uint64_t(int64_t(int32_t(uint32_t(value))));
    default: return value;
  }
}

double combine(double a, double b, ReduceOp op) {
  switch (op) {
    case ReduceOp::sum:
    case ReduceOp::avg: return a + b;
    case ReduceOp::prod: return a * b;
    case ReduceOp::min: return std::min(a, b);
    case ReduceOp::max: return std::max(a, b);
  }
  return a;
}

double expected_integer(size_t index, DataType type, ReduceOp op, int ranks) {
  uint64_t result = uint64_t(int64_t(check_value(0, index, op)));
  for (int r = 1; r < ranks; ++r) {
    const uint64_t value = uint64_t(int64_t(check_value(r, index, op)));
    switch (op) {
      case ReduceOp::sum:
      case ReduceOp::avg: result += value; break;
      case ReduceOp::prod: result *= value; break;
      case ReduceOp::min: result = std::min(result, value); break;
      case ReduceOp::max: result = std::max(result, value); break;
    }
    result = wrap(result, type);
  }
  // Inputs are positive, so the signed and unsigned orderings agree for min and max.
  int64_t value = int64_t(result);
  if (op == ReduceOp::avg) value /= ranks;
  return double(value);
}

double expected_float(size_t index, DataType type, ReduceOp op, int ranks) {
  double result = check_value(0, index, op);
  for (int r = 1; r < ranks; ++r) result = combine(result, check_value(r, index, op), op);
  if (op == ReduceOp::avg) result /= ranks;
  return stored_as(type, result);
}

}  // namespace

double check_value(int rank, size_t index, ReduceOp op) {
  const size_t mix = size_t(rank) * 7 + index;
  if (op == ReduceOp::prod) return mix % 5 == 0 ? 2 : 1;
  return double(1 + mix % 4);
}

void fill_check_input(void* buffer, size_t count, DataType type, ReduceOp op, int rank, size_t first) {
  for (size_t i = 0; i < count; ++i) write_element(buffer, i, type, check_value(rank, first + i, op));
}

size_t count_wrong_allreduce(const void* output, size_t count, DataType type, ReduceOp op, int ranks, size_t first) {
  const double tolerance = 4 * dtype_epsilon(type) * (1 + std::log2(double(std::max(ranks, 1))));
  size_t wrong = 0;
  for (size_t i = 0; i < count; ++i) {
    const double got = read_element(output, i, type);
    if (!is_floating(type)) {
      wrong += got != expected_integer(first + i, type, op, ranks);
      continue;
    }
    const double expected = expected_float(first + i, type, op, ranks);
    if (std::isinf(expected)) {
      wrong += got != expected;
    } else {
      wrong += !(std::fabs(got - expected) <= tolerance * std::fabs(expected));
    }
  }
  return wrong;
}

size_t count_wrong(Collective collective, const void* output, size_t count, DataType type, ReduceOp op, int ranks,
                   int rank, int root) {
  const size_t block = count / size_t(ranks);
  switch (collective) {
    case Collective::allreduce: return count_wrong_allreduce(output, count, type, op, ranks);
    case Collective::reduce: return rank == root ? count_wrong_allreduce(output, count, type, op, ranks) : 0;
    case Collective::reduce_scatter:
      return count_wrong_allreduce(output, block, type, op, ranks, block * size_t(rank));
    case Collective::broadcast:
    case Collective::allgather: break;
  }
  // Data is only moved: every element must be exactly the stored input value it came from.
  size_t wrong = 0;
  for (size_t i = 0; i < count; ++i) {
    const int source = collective == Collective::broadcast ? root : int(i / block);
    const size_t index = collective == Collective::broadcast ? i : i % block;
    wrong += read_element(output, i, type) != stored_as(type, check_value(source, index, op));
  }
  return wrong;
}

}  // namespace cclab
