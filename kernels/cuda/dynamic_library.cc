#include "cclab/dynamic_library.h"

#include <dlfcn.h>

namespace cclab {

DynamicLibrary::DynamicLibrary(std::string soname, const std::string& hint) : soname_(std::move(soname)) {
  handle_ = dlopen(soname_.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle_) missing_ = soname_ + " does not load (" + dlerror() + "); " + hint;
}

void* DynamicLibrary::find(const char* symbol) {
  if (!handle_) return nullptr;
  void* address = dlsym(handle_, symbol);
  if (!address && missing_.empty()) missing_ = soname_ + " has no " + symbol;
  return address;
}

std::string version_text(long code) {
  return std::to_string(code / 10000) + "." + std::to_string(code / 100 % 100) + "." + std::to_string(code % 100);
}

}  // namespace cclab
