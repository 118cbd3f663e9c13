// The CUDA devices this process can use, asked of the CUDA runtime (linked statically, so a machine
// without a driver gets a reason instead of a missing library).
#pragma once

#include <string>
#include <vector>

namespace cclab::cuda {

struct Devices {
  std::vector<std::string> names;  // "NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)", one per device
  std::string missing;             // why there are none ("" when there are)
};

Devices find_devices();

/// The architectures this build's kernels were compiled for, e.g. "sm_80 sm_90".
std::string built_architectures();

}  // namespace cclab::cuda
