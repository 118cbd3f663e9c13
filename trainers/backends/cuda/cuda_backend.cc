#include "backends/cuda/cuda_backend.h"

#include "backends/cuda/cuda_context.h"
#include "backends/cuda/training_kernels.h"
#include "cclab/cuda_devices.h"
#include "cclab/device.h"
#include "cclab/error.h"

namespace cclab::train {
namespace {

class CudaBackend : public Backend {
 public:
  explicit CudaBackend(std::shared_ptr<CudaContext> context) : context_(std::move(context)) {}
  std::string name() const override { return "cudnn"; }
  std::unique_ptr<Layer> make_layer(const LayerConfig& config) override { return make_cuda_layer(config, context_); }
  bool reads_host_memory() const override { return false; }

 private:
  std::shared_ptr<CudaContext> context_;
};

}  // namespace

std::string cuda_training_unavailable_reason() {
  if (std::string why = cuda_unavailable_reason(); !why.empty()) return why;
  std::string why;
  return load_cuda_libraries(&why) ? "" : why;
}

std::string describe_cuda_training_libraries() {
  std::string why;
  const CudaLibraries* libraries = load_cuda_libraries(&why);
  if (!libraries) return "does not load: " + why;
  return "cuDNN " + libraries->cudnn_version + " and cuBLAS " + libraries->cublas_version +
         " load (train --device cuda)";
}

GpuBackend open_cuda_backend(int local_rank) {
  if (const std::string why = cuda_training_unavailable_reason(); !why.empty())
    throw UsageError("--device cuda: " + why);
  const CudaLibraries* libraries = load_cuda_libraries(nullptr);
  const int device = local_rank % cuda_device_count();
  check_cuda(cudaSetDevice(device), "cudaSetDevice");
  if (const std::string missing = cuda_kernels::unavailable_on_current_device(); !missing.empty())
    throw UsageError("--device cuda: " + missing + "; this build has " + cuda::built_architectures());
  auto context = std::make_shared<CudaContext>(device, *libraries);
  GpuBackend backend;
  backend.layers = std::make_unique<CudaBackend>(context);
  backend.device = make_cuda_compute_device(context);
  backend.gpu = context->name();
  backend.cudnn_version = libraries->cudnn_version;
  backend.cublas_version = libraries->cublas_version;
  return backend;
}

}  // namespace cclab::train
