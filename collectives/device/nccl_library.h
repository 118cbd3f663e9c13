// NCCL, loaded at run time (libnccl.so.2): a build links no NCCL, so cclab starts on machines that
// lack it (every host feature works there) and finds NCCL where it is installed, e.g. from the
// nvidia-nccl-cu13 Python package through LD_LIBRARY_PATH (ci/gpu-check.sh).
#pragma once

#include <nccl.h>

#include <string>

namespace cclab {

// Every NCCL function cclab calls; the table's entries have the header's types.
// clang-format off
#define CCLAB_NCCL_FUNCTIONS(X)                                                                             \
  X(ncclGetVersion) X(ncclGetErrorString) X(ncclGetLastError) X(ncclGetUniqueId) X(ncclCommInitRankConfig) \
  X(ncclCommGetAsyncError) X(ncclCommFinalize) X(ncclCommDestroy) X(ncclCommAbort) X(ncclGroupStart)     \
  X(ncclGroupEnd) X(ncclSend) X(ncclRecv) X(ncclAllReduce) X(ncclBroadcast) X(ncclReduce)                 \
  X(ncclReduceScatter) X(ncclAllGather)
// clang-format on

struct NcclLibrary {
#define CCLAB_NCCL_ENTRY(name) decltype(&::name) name = nullptr;
  CCLAB_NCCL_FUNCTIONS(CCLAB_NCCL_ENTRY)
#undef CCLAB_NCCL_ENTRY
  std::string version;  // "2.28.9"
};

/// The library, loaded on first call; nullptr when it does not load, with the reason in `*why`.
const NcclLibrary* load_nccl(std::string* why = nullptr);

/// The library or UsageError with the reason.
const NcclLibrary& nccl_or_refuse();

}  // namespace cclab
