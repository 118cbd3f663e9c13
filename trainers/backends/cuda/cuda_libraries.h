// cuDNN and cuBLAS, loaded at run time (libcudnn.so.9, libcublas.so.13) as NCCL is: a build links
// neither, so cclab starts where they are missing and `train --device cuda` says which one is.
#pragma once

#include <cublas_v2.h>
#include <cudnn.h>

#include <string>

namespace cclab::train {

// Every cuDNN and cuBLAS function the GPU backend calls; the entries have the headers' types.
// clang-format off
#define CCLAB_CUDNN_FUNCTIONS(X)                                                                              \
  X(cudnnGetVersion) X(cudnnGetErrorString) X(cudnnCreate) X(cudnnDestroy) X(cudnnSetStream)                  \
  X(cudnnCreateTensorDescriptor) X(cudnnDestroyTensorDescriptor) X(cudnnSetTensor4dDescriptor)               \
  X(cudnnCreateFilterDescriptor) X(cudnnDestroyFilterDescriptor) X(cudnnSetFilter4dDescriptor)               \
  X(cudnnCreateConvolutionDescriptor) X(cudnnDestroyConvolutionDescriptor) X(cudnnSetConvolution2dDescriptor) \
  X(cudnnSetConvolutionMathType) X(cudnnGetConvolutionForwardWorkspaceSize) X(cudnnConvolutionForward)       \
  X(cudnnGetConvolutionBackwardDataWorkspaceSize) X(cudnnConvolutionBackwardData)                            \
  X(cudnnGetConvolutionBackwardFilterWorkspaceSize) X(cudnnConvolutionBackwardFilter)                        \
  X(cudnnConvolutionBackwardBias) X(cudnnAddTensor) X(cudnnTransformTensor)                                  \
  X(cudnnCreatePoolingDescriptor) X(cudnnDestroyPoolingDescriptor) X(cudnnSetPooling2dDescriptor)            \
  X(cudnnPoolingForward) X(cudnnPoolingBackward)
#define CCLAB_CUBLAS_FUNCTIONS(X)                                                                          \
  X(cublasCreate_v2) X(cublasDestroy_v2) X(cublasSetStream_v2) X(cublasSetMathMode) X(cublasSgemm_v2)     \
  X(cublasGetStatusString) X(cublasGetProperty)
// clang-format on

struct CudaLibraries {
#define CCLAB_CUDA_LIBRARY_ENTRY(name) decltype(&::name) name = nullptr;
  CCLAB_CUDNN_FUNCTIONS(CCLAB_CUDA_LIBRARY_ENTRY)
  CCLAB_CUBLAS_FUNCTIONS(CCLAB_CUDA_LIBRARY_ENTRY)
#undef CCLAB_CUDA_LIBRARY_ENTRY
  std::string cudnn_version, cublas_version;  // "9.19.0", "13.1.0"
};

/// Both libraries, loaded on first call; nullptr when one does not load, with the reason in `*why`.
const CudaLibraries* load_cuda_libraries(std::string* why);

}  // namespace cclab::train
