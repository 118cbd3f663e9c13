// CPU reduction kernels: element-wise `dst[i] = a[i] op b[i]` for every dtype and operator.
#pragma once

#include <cstddef>
#include <vector>

#include "cclab/dtype.h"

namespace cclab {

/// dst[i] = a[i] op b[i] for i < count. `dst` may alias `a` or `b` exactly (not partially).
/// For ReduceOp::avg this sums; when `divisor` > 1 the result is divided by it in the same pass
/// (the last reduction of an average passes the rank count). Integer averages truncate toward zero.
/// f16 and bf16 are computed in f32 and rounded to nearest even.
void reduce(void* dst, const void* a, const void* b, size_t count, DataType type, ReduceOp op,
            int divisor = 1);

/// buffer[i] /= divisor for an average whose sum is complete (e.g. on a single rank).
void divide(void* buffer, size_t count, DataType type, int divisor);

/// The instruction sets the kernels are compiled for. Every level gives the same bits; reduce()
/// uses the best this CPU supports, chosen once from CPUID (AVX-512 only for arrays of up to 1 MiB:
/// beyond cache AVX2 streams as fast or faster).
enum class KernelLevel { sse2, avx2, avx512 };

const char* kernel_level_name(KernelLevel level);
/// The levels this CPU can run, lowest first (sse2 always).
std::vector<KernelLevel> supported_kernel_levels();
/// The level reduce() and divide() use for arrays that fit in cache.
KernelLevel best_kernel_level();
/// reduce() at a given level, for tests and benchmarks; std::invalid_argument if the CPU lacks it.
void reduce(KernelLevel level, void* dst, const void* a, const void* b, size_t count, DataType type, ReduceOp op,
            int divisor = 1);

}  // namespace cclab
