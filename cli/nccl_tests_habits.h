// Hints for people who type nccl-tests' flags by habit: when a command line does not parse, the
// error says what cclab calls the flag that was meant, in the same line.
#pragma once

#include <string>
#include <vector>

namespace cclab {

/// " (nccl-tests' -J FILE is --json FILE here)" for the first nccl-tests habit in `args` that
/// cclab spells otherwise or lacks, or "".
std::string nccl_tests_hint(const std::vector<std::string>& args);

}  // namespace cclab
