// Output files written whole or not at all.
#pragma once

#include <string>

namespace cclab {

/// Writes `text` to `path` through a temporary file beside it, renamed into place: a failed write
/// leaves nothing half-written and an existing file stays as it was. Throws Error naming `path`.
void write_whole_file(const std::string& path, const std::string& text);

}  // namespace cclab
