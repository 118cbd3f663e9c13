// Microbenchmark of the CPU reduce kernels: sum over every dtype and every operator on f32, at
// buffer sizes that fit L1, L2 and only memory, beside memcpy of the same buffer size; and f32 sum
// at every instruction-set level the CPU has.
//
// bytes_per_second counts memory traffic: a reduce reads two buffers and writes one (3 x size),
// memcpy reads one and writes one (2 x size), so the two are directly comparable.
#include <benchmark/benchmark.h>

#include <cstring>
#include <string>
#include <vector>

#include "cclab/dtype.h"
#include "cclab/reduce.h"

namespace {

using cclab::DataType;
using cclab::KernelLevel;
using cclab::ReduceOp;

constexpr size_t kBufferBytes[] = {size_t{4} << 10, size_t{256} << 10, size_t{8} << 20};

// Each benchmark runs about this long; 42 of them stay well under 30 s including setup.
constexpr double kMinTimeSeconds = 0.05;

std::string size_label(size_t bytes) {
  if (bytes >= (size_t{1} << 20)) return std::to_string(bytes >> 20) + "MiB";
  return std::to_string(bytes >> 10) + "KiB";
}

/// A buffer of ones in the type's encoding: sums, products, min and max of ones stay small normal
/// numbers, so no operator hits slow subnormal or overflow paths.
std::vector<unsigned char> ones(DataType type, size_t bytes) {
  std::vector<unsigned char> buffer(bytes);
  const size_t size = cclab::dtype_size(type);
  unsigned char one[8] = {};
  switch (type) {
    case DataType::f32: {
      const float value = 1;
      std::memcpy(one, &value, size);
      break;
    }
    case DataType::f64: {
      const double value = 1;
      std::memcpy(one, &value, size);
      break;
    }
    case DataType::f16: {
      const uint16_t value = cclab::f32_to_f16(1);
      std::memcpy(one, &value, size);
      break;
    }
    case DataType::bf16: {
      const uint16_t value = cclab::f32_to_bf16(1);
      std::memcpy(one, &value, size);
      break;
    }
    case DataType::i32:
    case DataType::i64:
    case DataType::u8:
      one[0] = 1;  // little-endian
      break;
  }
  for (size_t offset = 0; offset + size <= bytes; offset += size)
    std::memcpy(buffer.data() + offset, one, size);
  return buffer;
}

void reduce_benchmark(benchmark::State& state, KernelLevel level, DataType type, ReduceOp op, int divisor,
                      size_t bytes) {
  const std::vector<unsigned char> a = ones(type, bytes);
  const std::vector<unsigned char> b = ones(type, bytes);
  std::vector<unsigned char> dst(bytes);
  const size_t count = bytes / cclab::dtype_size(type);
  for (auto _ : state) {
    cclab::reduce(level, dst.data(), a.data(), b.data(), count, type, op, divisor);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * 3 * bytes));
}

void memcpy_benchmark(benchmark::State& state, size_t bytes) {
  const std::vector<unsigned char> source(bytes, 1);
  std::vector<unsigned char> dst(bytes);
  for (auto _ : state) {
    std::memcpy(dst.data(), source.data(), bytes);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * 2 * bytes));
}

void register_benchmarks() {
  // Unsuffixed names run at the level cclab uses; other levels carry theirs.
  const KernelLevel best = cclab::best_kernel_level();
  for (size_t bytes : kBufferBytes) {
    const std::string size = size_label(bytes);
    benchmark::RegisterBenchmark(("memcpy/" + size).c_str(), memcpy_benchmark, bytes)
        ->MinTime(kMinTimeSeconds);
    for (DataType type : cclab::kAllDataTypes) {
      const std::string name = "reduce/" + std::string(cclab::dtype_name(type)) + "/sum/" + size;
      benchmark::RegisterBenchmark(name.c_str(), reduce_benchmark, best, type, ReduceOp::sum, 1, bytes)
          ->MinTime(kMinTimeSeconds);
    }
    for (KernelLevel level : cclab::supported_kernel_levels()) {
      if (level == best) continue;
      const std::string name = "reduce/f32/sum/" + size + "/" + cclab::kernel_level_name(level);
      benchmark::RegisterBenchmark(name.c_str(), reduce_benchmark, level, DataType::f32, ReduceOp::sum, 1, bytes)
          ->MinTime(kMinTimeSeconds);
    }

    for (ReduceOp op : {ReduceOp::prod, ReduceOp::min, ReduceOp::max, ReduceOp::avg}) {
      // avg without a divisor is sum; divisor 2 measures the final, dividing step.
      const int divisor = op == ReduceOp::avg ? 2 : 1;
      const std::string name = "reduce/f32/" + std::string(cclab::op_name(op)) + "/" + size;
      benchmark::RegisterBenchmark(name.c_str(), reduce_benchmark, best, DataType::f32, op, divisor, bytes)
          ->MinTime(kMinTimeSeconds);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_benchmarks();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
