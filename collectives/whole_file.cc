#include "cclab/whole_file.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cclab/error.h"

namespace cclab {

void write_whole_file(const std::string& path, const std::string& text) {
  const std::string temporary = path + ".tmp." + std::to_string(getpid());
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) {
      std::error_code ignored;
      std::filesystem::remove(temporary, ignored);
      throw Error("cannot write " + path);
    }
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) {
    std::filesystem::remove(temporary, error);
    throw Error("cannot write " + path + ": " + error.message());
  }
}

std::string read_small_file(const std::string& path, const std::string& what, size_t largest_bytes) {
  const std::string named = what + " '" + path + "'";
  std::error_code error;
  if (!std::filesystem::exists(path, error)) throw UsageError(named + " does not exist");
  if (std::filesystem::is_directory(path, error)) throw UsageError(named + " is a directory");
  const auto bytes = std::filesystem::file_size(path, error);
  if (!error && bytes > largest_bytes)
    throw UsageError(named + " is " + std::to_string(bytes) + " bytes, larger than any cclab writes");
  std::ifstream file(path, std::ios::binary);
  if (!file) throw UsageError("cannot read " + named);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

}  // namespace cclab
