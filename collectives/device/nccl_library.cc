#include "nccl_library.h"

#include <dlfcn.h>

#include <mutex>

#include "cclab/error.h"

namespace cclab {
namespace {

struct Loaded {
  NcclLibrary library;
  std::string missing;  // why it did not load; "" when it did
};

Loaded load() {
  Loaded loaded;
  void* handle = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    loaded.missing = std::string("libnccl.so.2 does not load (") + dlerror() +
                     "); install NCCL or put its lib folder on LD_LIBRARY_PATH";
    return loaded;
  }
  NcclLibrary& library = loaded.library;
#define CCLAB_NCCL_LOAD(name)                                                        \
  library.name = reinterpret_cast<decltype(library.name)>(dlsym(handle, #name));     \
  if (!library.name) {                                                               \
    loaded.missing = "libnccl.so.2 has no " #name " (NCCL 2.14 or newer is needed)"; \
    return loaded;                                                                   \
  }
  CCLAB_NCCL_FUNCTIONS(CCLAB_NCCL_LOAD)
#undef CCLAB_NCCL_LOAD
  int version = 0;
  library.ncclGetVersion(&version);
  // NCCL_VERSION_CODE since 2.9: major * 10000 + minor * 100 + patch.
  library.version =
      std::to_string(version / 10000) + "." + std::to_string(version / 100 % 100) + "." + std::to_string(version % 100);
  return loaded;
}

}  // namespace

const NcclLibrary* load_nccl(std::string* why) {
  static const Loaded loaded = load();
  if (!loaded.missing.empty()) {
    if (why) *why = loaded.missing;
    return nullptr;
  }
  return &loaded.library;
}

const NcclLibrary& nccl_or_refuse() {
  std::string why;
  if (const NcclLibrary* library = load_nccl(&why)) return *library;
  throw UsageError("NCCL: " + why);
}

}  // namespace cclab
