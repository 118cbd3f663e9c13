#include "backends/cuda/cuda_libraries.h"

#include "cclab/dynamic_library.h"

namespace cclab::train {
namespace {

LoadedTable<CudaLibraries> load() {
  LoadedTable<CudaLibraries> loaded;
  CudaLibraries& libraries = loaded.table;
  DynamicLibrary cudnn("libcudnn.so.9", "install cuDNN 9 or put its lib folder on LD_LIBRARY_PATH");
  DynamicLibrary cublas("libcublas.so.13", "install cuBLAS (CUDA 13) or put its lib folder on LD_LIBRARY_PATH");
#define CCLAB_BIND_CUDNN(name) cudnn.bind(libraries.name, #name);
#define CCLAB_BIND_CUBLAS(name) cublas.bind(libraries.name, #name);
  CCLAB_CUDNN_FUNCTIONS(CCLAB_BIND_CUDNN)
  CCLAB_CUBLAS_FUNCTIONS(CCLAB_BIND_CUBLAS)
#undef CCLAB_BIND_CUDNN
#undef CCLAB_BIND_CUBLAS
  loaded.missing = !cudnn.missing().empty() ? cudnn.missing() : cublas.missing();
  if (!loaded.missing.empty()) return loaded;
  libraries.cudnn_version = version_text(long(libraries.cudnnGetVersion()));
  int major = 0, minor = 0, patch = 0;
  libraries.cublasGetProperty(MAJOR_VERSION, &major);
  libraries.cublasGetProperty(MINOR_VERSION, &minor);
  libraries.cublasGetProperty(PATCH_LEVEL, &patch);
  libraries.cublas_version = std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
  return loaded;
}

}  // namespace

const CudaLibraries* load_cuda_libraries(std::string* why) {
  static const LoadedTable<CudaLibraries> loaded = load();
  return loaded.get(why);
}

}  // namespace cclab::train
