// Bounds on what a user can ask for: numeric flags with their ranges, and output paths checked
// before any work starts, so bad input ends with one line and exit status 2 (DESIGN 3.1) rather
// than a wrapped-around count, an endless run or a failure after the measurements.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace cclab {

/// A CLI11 check: the value is a finite number in [min, max], and whole when `whole`. It reads
/// the text itself, so "-1" for an unsigned flag, "nan", "inf" and 1e30 are refused before CLI11
/// converts (and would wrap) them.
CLI::Validator in_range(double min, double max, bool whole = true);

/// "8", "64K", "256M", "1G" (powers of 1024) to bytes; throws UsageError otherwise.
size_t parse_size(const std::string& text);

/// UsageError unless `path` can be opened for appending (its directories are made as the writer
/// would make them). `flag` names it in the message.
void check_output_file(const std::string& flag, const std::string& path);

/// UsageError unless `path` is, or can be made, a directory this process can create files in.
void check_output_directory(const std::string& flag, const std::string& path);

}  // namespace cclab
