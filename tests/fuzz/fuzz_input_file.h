// The fuzz input as a file, for readers that take a path: each fuzzing process rewrites one file in
// a directory of its own under the temporary directory (TMPDIR), removed when the process ends.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace cclab::fuzz {

class InputFile {
 public:
  explicit InputFile(const std::string& name)
      : directory_(std::filesystem::temp_directory_path() / ("cclab-fuzz-" + std::to_string(::getpid()))),
        path_((directory_ / name).string()) {
    std::filesystem::create_directories(directory_);
  }
  ~InputFile() {
    std::error_code error;
    std::filesystem::remove_all(directory_, error);
  }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  /// Replaces the file's contents with the input; returns its path.
  const std::string& write(const uint8_t* data, size_t size) const {
    std::ofstream file(path_, std::ios::binary | std::ios::trunc);
    file.write(reinterpret_cast<const char*>(data), std::streamsize(size));
    file.close();
    if (!file) std::abort();  // the harness, not the reader, failed
    return path_;
  }
  const std::filesystem::path& directory() const { return directory_; }

 private:
  std::filesystem::path directory_;
  std::string path_;
};

}  // namespace cclab::fuzz
