#include "nccl_library.h"

#include "cclab/dynamic_library.h"
#include "cclab/error.h"

namespace cclab {
namespace {

LoadedTable<NcclLibrary> load() {
  LoadedTable<NcclLibrary> loaded;
  DynamicLibrary nccl("libnccl.so.2", "install NCCL or put its lib folder on LD_LIBRARY_PATH");
  NcclLibrary& library = loaded.table;
#define CCLAB_NCCL_BIND(name) nccl.bind(library.name, #name);
  CCLAB_NCCL_FUNCTIONS(CCLAB_NCCL_BIND)
#undef CCLAB_NCCL_BIND
  if (!nccl.missing().empty()) {
    loaded.missing = nccl.missing() + " (NCCL 2.14 or newer is needed)";
    return loaded;
  }
  int version = 0;
  library.ncclGetVersion(&version);
  library.version = version_text(version);
  return loaded;
}

}  // namespace

const NcclLibrary* load_nccl(std::string* why) {
  static const LoadedTable<NcclLibrary> loaded = load();
  return loaded.get(why);
}

const NcclLibrary& nccl_or_refuse() {
  std::string why;
  if (const NcclLibrary* library = load_nccl(&why)) return *library;
  throw UsageError("NCCL: " + why);
}

}  // namespace cclab
