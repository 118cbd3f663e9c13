// read_idx (trainers/data/idx.h) on any bytes, plain or gzip: it returns an array whose dimensions
// multiply out to its element count, or throws UsageError.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "cclab/error.h"
#include "data/idx.h"
#include "fuzz_input_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const cclab::fuzz::InputFile file("images.idx");
  const std::string& path = file.write(data, size);
  // Without item dimensions, and with the 2x2 items the seeds hold: the second reaches the check of
  // the header against what the caller expects.
  for (const std::vector<size_t>& item_dims : {std::vector<size_t>{}, std::vector<size_t>{2, 2}}) {
    try {
      const cclab::train::IdxArray array = cclab::train::read_idx(path, item_dims);
      size_t elements = 1;
      for (size_t dim : array.dims) elements *= dim;
      if (array.dims.empty() || elements != array.values.size()) std::abort();
      if (!item_dims.empty() && (array.dims.size() != 3 || array.dims[1] != 2 || array.dims[2] != 2)) std::abort();
    } catch (const cclab::UsageError&) {
    }
  }
  return 0;
}
