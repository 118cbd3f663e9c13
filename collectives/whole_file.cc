#include "cclab/whole_file.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

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

}  // namespace cclab
