#include "data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "cclab/error.h"

namespace cclab::train {
namespace {

struct GzCloser {
  void operator()(gzFile file) const { gzclose(file); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

// Largest element count we accept: a corrupt header must not make us allocate terabytes.
constexpr size_t kMaxElements = size_t{1} << 32;
// The data is read in pieces that double from the first size to the largest, so the memory held
// follows the bytes the file really has, not what its header claims, even for a file of a few bytes.
constexpr size_t kFirstReadPiece = size_t{64} << 10;
constexpr size_t kLargestReadPiece = size_t{16} << 20;

std::string dims_text(const std::vector<size_t>& dims) {
  std::string text;
  for (size_t d = 0; d < dims.size(); ++d) {
    if (d > 0) text += 'x';
    text += std::to_string(dims[d]);
  }
  return text;
}

class IdxReader {
 public:
  explicit IdxReader(const std::string& path) : path_(path) {
    std::error_code error;
    if (!std::filesystem::exists(path, error))
      fail("does not exist (Fashion-MNIST comes with Debian's dataset-fashion-mnist package)");
    if (std::filesystem::is_directory(path, error)) fail("is a directory, not an IDX file");
    file_.reset(gzopen(path.c_str(), "rb"));
    if (!file_) fail(std::string("cannot be opened: ") + std::strerror(errno));
    gzbuffer(file_.get(), 1 << 17);
  }

  // Reads exactly `bytes` bytes or fails saying what was being read: the bytes from `offset` of
  // `total` bytes of `what`.
  void read(void* into, size_t bytes, const std::string& what, size_t offset = 0, size_t total = 0) {
    auto* at = static_cast<uint8_t*>(into);
    size_t done = 0;
    while (done < bytes) {
      const unsigned chunk = static_cast<unsigned>(std::min<size_t>(bytes - done, 1u << 30));
      const int got = gzread(file_.get(), at + done, chunk);
      if (got < 0) fail_zlib();
      if (got == 0) {
        int code = Z_OK;
        gzerror(file_.get(), &code);
        if (code != Z_OK) fail_zlib();
        fail("is truncated: it ends after " + std::to_string(offset + done) + " of the " +
             std::to_string(total ? total : bytes) + " bytes of " + what);
      }
      done += static_cast<size_t>(got);
    }
  }

  void expect_end() {
    uint8_t extra = 0;
    const int got = gzread(file_.get(), &extra, 1);
    if (got < 0) fail_zlib();
    if (got > 0) fail("has data after the end its header announces (wrong dimensions or not an IDX file)");
  }

  [[noreturn]] void fail(const std::string& why) const { throw UsageError("data file '" + path_ + "' " + why); }

 private:
  [[noreturn]] void fail_zlib() const {
    int code = Z_OK;
    std::string message = gzerror(file_.get(), &code);
    // zlib prefixes the path, which our message already names.
    if (message.rfind(path_ + ": ", 0) == 0) message.erase(0, path_.size() + 2);
    fail("is corrupt (zlib: " + (message.empty() ? std::string("unknown error") : message) + ")");
  }

  std::string path_;
  GzFile file_;
};

}  // namespace

IdxArray read_idx(const std::string& path, const std::vector<size_t>& item_dims) {
  IdxReader reader(path);
  uint8_t magic[4];
  reader.read(magic, 4, "the header");
  if (magic[0] != 0 || magic[1] != 0)
    reader.fail("is not an IDX file (its first bytes are not 00 00; a compressed file must be gzip)");
  if (magic[2] != 0x08) {
    char type[8];
    std::snprintf(type, sizeof type, "0x%02x", magic[2]);
    reader.fail(std::string("holds elements of IDX type ") + type + "; only unsigned bytes (0x08) are supported");
  }
  if (magic[3] == 0 || magic[3] > 4)
    reader.fail("announces " + std::to_string(magic[3]) + " dimensions (1 to 4 expected)");
  IdxArray array;
  size_t elements = 1;
  for (int d = 0; d < magic[3]; ++d) {
    uint8_t bytes[4];
    reader.read(bytes, 4, "the header");
    const size_t dim = (size_t(bytes[0]) << 24) | (size_t(bytes[1]) << 16) | (size_t(bytes[2]) << 8) | bytes[3];
    if (dim == 0) reader.fail("announces a dimension of size 0");
    array.dims.push_back(dim);
    elements *= dim;
    if (elements > kMaxElements) reader.fail("announces more than 2^32 elements (corrupt header?)");
  }
  if (!item_dims.empty() && (array.dims.size() != item_dims.size() + 1 ||
                             !std::equal(item_dims.begin(), item_dims.end(), array.dims.begin() + 1)))
    reader.fail("holds " + dims_text(array.dims) + " elements; expected N x " + dims_text(item_dims));
  for (size_t done = 0, largest = kFirstReadPiece; done < elements;) {
    const size_t piece = std::min(largest, elements - done);
    array.values.resize(done + piece);
    reader.read(array.values.data() + done, piece, "data", done, elements);
    done += piece;
    largest = std::min(2 * largest, kLargestReadPiece);
  }
  reader.expect_end();
  return array;
}

}  // namespace cclab::train
