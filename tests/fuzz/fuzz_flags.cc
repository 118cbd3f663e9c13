// The flag parsers of cli/flag_checks.h on any text: parse_size against an independent reading of
// the same grammar, and in_range on options of each type cclab gives it, where a value that gets
// through CLI11 must be within the bounds (nothing wraps around on the way).
#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>

#include "cclab/error.h"
#include "flag_checks.h"

namespace {

// parse_size's grammar, read apart from it: 1 to 15 digits, then nothing or one of KkMmGg; the bytes,
// or -1 where the text is not a size or the bytes do not fit in size_t.
__int128 expected_size(const std::string& text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 15 || text.size() > digits + 1) return -1;
  __int128 count = 0;
  for (size_t i = 0; i < digits; ++i) count = count * 10 + (text[i] - '0');
  if (text.size() == digits + 1) {
    const size_t suffix = std::string("KkMmGg").find(text[digits]);  // 1024 to the power suffix / 2 + 1
    if (suffix == std::string::npos) return -1;
    count <<= 10 * (suffix / 2 + 1);
  }
  return count <= std::numeric_limits<size_t>::max() ? count : -1;
}

void check_parse_size(const std::string& text) {
  const __int128 expected = expected_size(text);
  try {
    if (__int128(cclab::parse_size(text)) != expected) std::abort();
  } catch (const cclab::UsageError&) {
    if (expected >= 0) std::abort();
  }
}

// `text` as the value of an option of type T checked by in_range(min, max, whole), as cclab's
// commands declare them (-n, --timeout, --steps, --stages, --warmup).
template <typename T>
void check_in_range(const std::string& text, double min, double max, bool whole) {
  CLI::App app;
  T value{};
  app.add_option("--value", value)->check(cclab::in_range(min, max, whole));
  try {
    app.parse(std::vector<std::string>{"--value=" + text});
  } catch (const CLI::ParseError&) {
    return;
  }
  if (!(double(value) >= min && double(value) <= max)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  check_parse_size(text);
  check_in_range<int>(text, 1, 1 << 20, true);
  check_in_range<double>(text, 0.001, 7 * 24 * 3600, false);
  check_in_range<size_t>(text, 1, 1e12, true);
  check_in_range<size_t>(text, 1, 4096, true);
  check_in_range<int>(text, 0, 1e8, true);
  return 0;
}
