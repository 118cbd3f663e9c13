#include "backends/cuda/cuda_context.h"

#include "cclab/error.h"

namespace cclab::train {

CudaContext::CudaContext(int device, const CudaLibraries& libraries) : libraries_(libraries), device_(device) {
  make_current();
  cudaDeviceProp properties{};
  check_cuda(cudaGetDeviceProperties(&properties, device), "cudaGetDeviceProperties");
  name_ = "cuda:" + std::to_string(device) + " " + properties.name;
  check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
  check(libraries_.cudnnCreate(&cudnn_), "cudnnCreate");
  check(libraries_.cudnnSetStream(cudnn_, stream_), "cudnnSetStream");
  check(libraries_.cublasCreate_v2(&cublas_), "cublasCreate");
  check(libraries_.cublasSetStream_v2(cublas_, stream_), "cublasSetStream");
  // No TF32 for the fc layers' GEMMs, as none for the convolutions (FMA math): float products,
  // so that the GPU's losses follow the CPU backend's.
  check(libraries_.cublasSetMathMode(cublas_, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
}

CudaContext::~CudaContext() {
  make_current();
  cudaStreamSynchronize(stream_);
  if (cublas_) libraries_.cublasDestroy_v2(cublas_);
  if (cudnn_) libraries_.cudnnDestroy(cudnn_);
  if (scratch_) cudaFree(scratch_);
  if (stream_) cudaStreamDestroy(stream_);
}

void CudaContext::check(cudnnStatus_t status, const char* what) const {
  if (status != CUDNN_STATUS_SUCCESS) throw Error(std::string(what) + ": " + libraries_.cudnnGetErrorString(status));
}

void CudaContext::check(cublasStatus_t status, const char* what) const {
  if (status != CUBLAS_STATUS_SUCCESS) throw Error(std::string(what) + ": " + libraries_.cublasGetStatusString(status));
}

void CudaContext::make_current() const { check_cuda(cudaSetDevice(device_), "cudaSetDevice"); }

void CudaContext::wait() const { check_cuda(cudaStreamSynchronize(stream_), "the GPU's stream"); }

CudaContext::Scratch CudaContext::claim_scratch(size_t bytes) {
  std::unique_lock lock(scratch_mutex_);
  make_current();
  if (bytes > scratch_bytes_) {
    wait();  // the old scratch may still be read by work on the stream
    if (scratch_) check_cuda(cudaFree(scratch_), "cudaFree");
    scratch_ = nullptr;
    scratch_bytes_ = 0;
    void* memory = nullptr;
    check_cuda(cudaMalloc(&memory, bytes), "cudaMalloc (scratch)");
    scratch_ = static_cast<std::byte*>(memory);
    scratch_bytes_ = bytes;
  }
  return {std::move(lock), scratch_};
}

}  // namespace cclab::train
