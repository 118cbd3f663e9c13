// The one check of a CUDA runtime call's status, for the device layer and the trainers' GPU backend.
#pragma once

#include <cuda_runtime_api.h>

#include <string>

namespace cclab {

/// Throws Error "<what>: <CUDA's message>" unless `status` is cudaSuccess.
void check_cuda(cudaError_t status, const std::string& what);

}  // namespace cclab
