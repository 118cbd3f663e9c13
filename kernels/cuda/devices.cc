#include "cclab/cuda_devices.h"

#include <cuda_runtime_api.h>

#include <cstdio>
#include <sstream>

namespace cclab::cuda {

Devices find_devices() {
  Devices found;
  int count = 0;
  if (const cudaError_t error = cudaGetDeviceCount(&count); error != cudaSuccess) {
    found.missing = cudaGetErrorString(error);
    return found;
  }
  if (count == 0) found.missing = "no CUDA device";
  for (int device = 0; device < count; ++device) {
    cudaDeviceProp properties{};
    if (cudaGetDeviceProperties(&properties, device) != cudaSuccess) continue;
    char name[512];
    std::snprintf(name, sizeof name, "%s (sm_%d%d, %.1f GiB)", properties.name, properties.major, properties.minor,
                  double(properties.totalGlobalMem) / double(1ull << 30));
    found.names.push_back(name);
  }
  return found;
}

std::string built_architectures() {
  std::istringstream list(CCLAB_CUDA_ARCHITECTURES);  // "80 90" from CMake
  std::string text, arch;
  while (list >> arch) {
    text += text.empty() ? "sm_" : " sm_";
    text += arch;
  }
  return text;
}

}  // namespace cclab::cuda
