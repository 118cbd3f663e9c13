// A shared library opened at run time, and its functions bound into a table of pointers. cclab
// loads NCCL, cuDNN and cuBLAS this way: a build links none of them, so the same binary starts on
// machines without them (every host feature works there) and finds them where they are installed,
// e.g. from NVIDIA's Python packages through LD_LIBRARY_PATH.
#pragma once

#include <string>

namespace cclab {

class DynamicLibrary {
 public:
  /// dlopen(soname); on failure missing() says why, with `hint` (what to install) after it.
  DynamicLibrary(std::string soname, const std::string& hint);

  /// Points `entry` at the library's `symbol`; the first symbol that is absent sets missing().
  template <class Function>
  void bind(Function*& entry, const char* symbol) {
    entry = reinterpret_cast<Function*>(find(symbol));
  }

  /// Why the library or one of its bound functions is not there; "" when everything is.
  const std::string& missing() const { return missing_; }

 private:
  void* find(const char* symbol);

  std::string soname_, missing_;
  void* handle_ = nullptr;
};

/// A table of a library's functions, bound once per process, or why it could not be.
template <class Table>
struct LoadedTable {
  Table table;
  std::string missing;  // why it did not load; "" when it did

  /// The table, or nullptr with the reason in `*why` (when `why` is given).
  const Table* get(std::string* why) const {
    if (missing.empty()) return &table;
    if (why) *why = missing;
    return nullptr;
  }
};

/// "2.28.9" from major * 10000 + minor * 100 + patch, as NCCL (2.9 on) and cuDNN (9 on) report theirs.
std::string version_text(long code);

}  // namespace cclab
