// CPU reduction kernels: element-wise `dst[i] = a[i] op b[i]` for every dtype and operator.
#pragma once

#include <cstddef>

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

}  // namespace cclab
