// The GPU backend's entry point in a build without CUDA (or without cuDNN's header).
#include "backends/cuda/cuda_backend.h"
#include "cclab/error.h"

namespace cclab::train {

std::string cuda_training_unavailable_reason() {
  return "this build has no CUDA (configure with nvcc and cuDNN's header on the path)";
}

std::string describe_cuda_training_libraries() { return "not built"; }

GpuBackend open_cuda_backend(int /*local_rank*/) {
  throw UsageError("--device cuda: " + cuda_training_unavailable_reason());
}

}  // namespace cclab::train
