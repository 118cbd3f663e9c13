// What the GPU backend's layers and compute device share: the GPU, its stream, the cuDNN and cuBLAS
// handles, scratch memory, and the checks that turn a library status into an Error.
#pragma once

#include <cuda_runtime.h>

#include <memory>
#include <mutex>
#include <string>

#include "backends/cuda/cuda_libraries.h"
#include "device/cuda_check.h"
#include "model/compute_device.h"
#include "model/layer.h"

namespace cclab::train {

class CudaContext {
 public:
  CudaContext(int device, const CudaLibraries& libraries);
  ~CudaContext();
  CudaContext(const CudaContext&) = delete;
  CudaContext& operator=(const CudaContext&) = delete;

  const CudaLibraries& libraries() const { return libraries_; }
  cudaStream_t stream() const { return stream_; }
  cudnnHandle_t cudnn() const { return cudnn_; }
  cublasHandle_t cublas() const { return cublas_; }
  int device() const { return device_; }
  const std::string& name() const { return name_; }

  void check(cudnnStatus_t status, const char* what) const;
  void check(cublasStatus_t status, const char* what) const;
  /// Makes this context's GPU current for the calling thread.
  void make_current() const;
  /// Waits for everything enqueued on the stream: after it the host may read what the GPU wrote.
  void wait() const;

  /// One layer call's device scratch of at least `bytes`, with this GPU current. The layers of one
  /// process share it: the call keeps `lock` until it has waited for its stream.
  struct Scratch {
    std::unique_lock<std::mutex> lock;
    std::byte* bytes;
  };
  Scratch claim_scratch(size_t bytes);

 private:
  const CudaLibraries& libraries_;
  int device_;
  std::string name_;
  cudaStream_t stream_ = nullptr;
  cudnnHandle_t cudnn_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  std::mutex scratch_mutex_;
  std::byte* scratch_ = nullptr;
  size_t scratch_bytes_ = 0;
};


/// A layer of `config` on the context's GPU (cuda_layers.cc).
std::unique_ptr<Layer> make_cuda_layer(const LayerConfig& config, std::shared_ptr<CudaContext> context);
/// Managed memory, the loss and the SGD update on the context's GPU (cuda_compute_device.cc).
std::shared_ptr<ComputeDevice> make_cuda_compute_device(std::shared_ptr<CudaContext> context);

}  // namespace cclab::train
