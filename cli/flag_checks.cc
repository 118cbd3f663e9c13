#include "flag_checks.h"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <sstream>

#include "cclab/error.h"

namespace cclab {
namespace {

std::string number_text(double value) {
  std::ostringstream text;
  text.precision(15);
  text << value;
  return text.str();
}

// Makes the directories above `path` as the writers would, or says why not.
void make_parent_directories(const std::string& flag, const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (parent.empty()) return;
  std::error_code error;
  std::filesystem::create_directories(parent, error);
  if (error)
    throw UsageError(flag + " " + path + ": cannot make directory " + parent.string() + ": " + error.message());
}

}  // namespace

size_t parse_size(const std::string& text) {
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  const std::string suffix = text.substr(digits);
  size_t multiplier = 1;
  if (suffix == "K" || suffix == "k") multiplier = size_t{1} << 10;
  else if (suffix == "M" || suffix == "m") multiplier = size_t{1} << 20;
  else if (suffix == "G" || suffix == "g") multiplier = size_t{1} << 30;
  else if (!suffix.empty()) digits = 0;
  if (digits == 0 || digits > 15) throw UsageError("bad size '" + text + "' (expected e.g. 8, 64K, 256M, 1G)");
  const size_t count = std::stoull(text.substr(0, digits));
  if (count > std::numeric_limits<size_t>::max() / multiplier) throw UsageError("size '" + text + "' is too large");
  return count * multiplier;
}

CLI::Validator in_range(double min, double max, bool whole) {
  const std::string what = std::string(whole ? "a whole number" : "a number") + " from " + number_text(min) +
                           " to " + number_text(max);
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        char* end = nullptr;
        errno = 0;
        const double value = std::strtod(text.c_str(), &end);
        const bool parsed = !text.empty() && end == text.c_str() + text.size() && errno != ERANGE;
        if (!parsed || !std::isfinite(value) || value < min || value > max || (whole && value != std::floor(value)))
          return "'" + text + "' is not " + what;
        return std::string();
      },
      what);
}

// Opening is the only honest test of writability: access() says yes to root on a read-only file
// system or in /proc. A file this check creates is removed again, so a run that fails later leaves
// no empty file behind.
void check_output_file(const std::string& flag, const std::string& path) {
  if (path.empty()) throw UsageError(flag + " needs a file name");
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) throw UsageError(flag + " " + path + " is a directory, not a file");
  make_parent_directories(flag, path);
  const bool existed = std::filesystem::exists(path, error);
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw UsageError(flag + " " + path + ": cannot open for appending: " + std::strerror(errno));
  ::close(fd);
  if (!existed) ::unlink(path.c_str());
}

void check_output_directory(const std::string& flag, const std::string& path) {
  if (path.empty()) throw UsageError(flag + " needs a directory name");
  std::error_code error;
  if (std::filesystem::exists(path, error) && !std::filesystem::is_directory(path, error))
    throw UsageError(flag + " " + path + " is not a directory");
  std::filesystem::create_directories(path, error);
  if (error) throw UsageError(flag + " " + path + ": cannot make it: " + error.message());
  std::string probe = (std::filesystem::path(path) / ".cclab-write-test-XXXXXX").string();
  const int fd = ::mkstemp(probe.data());
  if (fd < 0) throw UsageError(flag + " " + path + ": cannot write in it: " + std::strerror(errno));
  ::close(fd);
  ::unlink(probe.c_str());
}

}  // namespace cclab
