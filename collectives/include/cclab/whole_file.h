// Small files written whole or not at all, and read whole with a bound on their size.
#pragma once

#include <cstddef>
#include <string>

namespace cclab {

/// Writes `text` to `path` through a temporary file beside it, renamed into place: a failed write
/// leaves nothing half-written and an existing file stays as it was. Throws Error naming `path`.
void write_whole_file(const std::string& path, const std::string& text);

/// The whole of a file cclab wrote (a profile, layer times), refused before reading when it is
/// missing, a directory or larger than `largest_bytes`: UsageError "<what> '<path>' ...".
std::string read_small_file(const std::string& path, const std::string& what, size_t largest_bytes);

}  // namespace cclab
