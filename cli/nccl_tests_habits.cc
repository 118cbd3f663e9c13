#include "nccl_tests_habits.h"

#include <cctype>

namespace cclab {
namespace {

bool is_number(const std::string& text) {
  if (text.empty()) return false;
  for (char c : text)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

struct Habit {
  const char* flag;
  const char* hint;
};

// nccl-tests' flags (all_reduce_perf --help) that cclab spells otherwise or does not have.
constexpr Habit kHabits[] = {
    {"-J", "nccl-tests' -J FILE is --json FILE here"},
    {"-g", "nccl-tests' -g (GPUs per thread) has no equivalent: cclab runs one rank per process, -n of them"},
    {"-t", "nccl-tests' -t (threads) has no equivalent: ranks are processes here, -n of them"},
    {"-m", "nccl-tests' -m (aggregated iterations) has no equivalent: --iters sets the timed iterations"},
    {"-a", "nccl-tests' -a (how times are averaged over ranks) has no equivalent: the slowest rank's time is kept"},
    {"-z", "nccl-tests' -z (blocking collectives) has no equivalent: cclab's calls block"},
    {"-C", "nccl-tests' -C (report CPU time) has no equivalent"},
    {"-R", "nccl-tests' -R (buffer registration) has no equivalent"},
};

}  // namespace

std::string nccl_tests_hint(const std::vector<std::string>& args) {
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if ((arg == "-c" || arg == "--check") && i + 1 < args.size() && is_number(args[i + 1]))
      return " (nccl-tests' -c N counts check iterations; here -c/--check takes no value and checks every result)";
    for (const Habit& habit : kHabits)
      if (arg == habit.flag) return std::string(" (") + habit.hint + ")";
  }
  return "";
}

}  // namespace cclab
