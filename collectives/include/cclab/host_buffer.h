// Page-aligned host memory, as an application's large arrays are: the benchmarks' buffers and auto's probe.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "cclab/error.h"

namespace cclab {

/// Page-aligned host memory of at least `bytes`, filled with `fill` once so the first timed
/// iteration does not fault it in.
class HostBuffer {
 public:
  explicit HostBuffer(size_t bytes, int fill = 0) {
    const size_t rounded = std::max<size_t>(4096, (bytes + 4095) / 4096 * 4096);
    data_.reset(static_cast<std::byte*>(std::aligned_alloc(4096, rounded)));
    if (!data_) throw Error("cannot allocate " + std::to_string(bytes) + " bytes");
    std::memset(data_.get(), fill, rounded);
  }
  std::byte* data() { return data_.get(); }

 private:
  struct Free {
    void operator()(std::byte* p) const { std::free(p); }
  };
  std::unique_ptr<std::byte, Free> data_;
};

}  // namespace cclab
