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
/// With `item_dims`, the file must hold N items of exactly those dimensions (checked from the
/// header, before any data is read). Memory grows with the data read, never to a size the header
/// only claims.
IdxArray read_idx(const std::string& path, const std::vector<size_t>& item_dims = {});

}  // namespace cclab::train
