// CUDA reduce kernels: the device twins of cclab/reduce.h, with the same element operators
// (cclab/reduce_operators.h), so a device result equals the CPU kernels' bit for bit.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

#include "cclab/dtype.h"

namespace cclab::cuda {

/// Enqueues dst[i] = a[i] op b[i] for i < count on `stream`; the buffers are device memory of the
/// current device, any alignment. `dst` may alias `a` or `b` exactly (not partially). avg sums and,
/// when `divisor` > 1, divides by it in the same pass, as cclab::reduce does. Throws
/// std::runtime_error when the launch fails (no device, an arch the card cannot run).
void reduce(void* dst, const void* a, const void* b, size_t count, DataType type, ReduceOp op, int divisor,
            cudaStream_t stream);

/// Enqueues buffer[i] /= divisor on `stream` (cclab::divide on the device).
void divide(void* buffer, size_t count, DataType type, int divisor, cudaStream_t stream);

}  // namespace cclab::cuda
