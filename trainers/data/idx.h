// IDX files (the MNIST / Fashion-MNIST container: magic 00 00 <type> <ndims>, big-endian u32 dims,
// then the data), read straight from .gz through zlib (gzread also reads uncompressed files).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cclab::train {

struct IdxArray {
  std::vector<size_t> dims;
  std::vector<uint8_t> values;  // row-major, dims multiplied out
};

/// Reads an IDX file of unsigned bytes (type 0x08), gzip-compressed or not. A missing, unreadable,
/// corrupt, truncated or over-long file, or another element type, throws UsageError naming the file.
IdxArray read_idx(const std::string& path);

}  // namespace cclab::train
