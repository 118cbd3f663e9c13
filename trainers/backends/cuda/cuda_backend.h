// The GPU backend of the trainers (`train --device cuda`, DESIGN 3.8): convolutions and max pooling
// on cuDNN's legacy API (deterministic algorithms, FMA math: no TF32), fully connected layers on
// cuBLAS, and cclab's own kernels for relu, the fc bias, the loss and the SGD update. No CUDA types
// here: a build without CUDA has the same entry point, which refuses with the reason.
#pragma once

#include <memory>
#include <string>

#include "model/compute_device.h"
#include "model/layer.h"

namespace cclab::train {

struct GpuBackend {
  std::unique_ptr<Backend> layers;
  /// The memory, loss and update that go with the layers: installed with use_compute_device
  /// before any model is built.
  std::shared_ptr<ComputeDevice> device;
  std::string gpu;                            // "cuda:0 NVIDIA H100 80GB HBM3"
  std::string cudnn_version, cublas_version;  // "9.19.0", "13.1.0"
};

/// Why `--device cuda` cannot run here ("" when it can): no CUDA in the build, no usable GPU, or
/// cuDNN or cuBLAS does not load. Asked before any rank starts work.
std::string cuda_training_unavailable_reason();

/// For `cclab info`: "cuDNN 9.19.0 and cuBLAS 13.1.0 load (train --device cuda)", or why they do not.
std::string describe_cuda_training_libraries();

/// Opens GPU `local_rank` mod the GPUs this process sees (ranks of one node spread over its GPUs;
/// several ranks may share one, as CUDA allows). UsageError with one line naming what is missing:
/// no CUDA in the build, no usable GPU, a GPU this build has no kernels for, cuDNN or cuBLAS.
GpuBackend open_cuda_backend(int local_rank);

}  // namespace cclab::train
