// Where this rank runs and how many compute threads it should use (DESIGN 3.1, "Placement").
//
// Under cclab's own launcher the supervisor decided and told us (CCLAB_BINDING, CCLAB_THREADS,
// CCLAB_OVERSUBSCRIBED). Under other launchers we infer it: the binding from our CPU affinity, and
// oversubscription / threads from how many ranks share this host against its CPUs.
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cclab/launch.h"

namespace cclab::detail {

/// "0-3,6,8-9" -> {0,1,2,3,6,8,9}; empty on anything malformed.
std::vector<int> parse_cpu_list(const std::string& text) {
  std::vector<int> cpus;
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find(',', at);
    if (end == std::string::npos) end = text.size();
    const std::string item = text.substr(at, end - at);
    at = end + 1;
    if (item.empty() || item == "\n") continue;
    char* rest = nullptr;
    const long first = std::strtol(item.c_str(), &rest, 10);
    long last = first;
    if (*rest == '-') last = std::strtol(rest + 1, &rest, 10);
    if (rest == item.c_str() || (*rest != '\0' && *rest != '\n') || first < 0 || last < first) return {};
    for (long cpu = first; cpu <= last; ++cpu) cpus.push_back(static_cast<int>(cpu));
  }
  return cpus;
}

/// The CPUs this process may run on. (cpu_set_t covers 1024 CPUs, plenty for the hosts we target.)
std::vector<int> affinity_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  return cpus;
}

/// The CPUs of this host that ranks can use: the container's cpuset when there is one (so a
/// 2-CPU container on a 64-core machine is not mistaken for "bound"), else all online CPUs.
std::vector<int> host_cpus() {
  for (const char* path : {"/sys/fs/cgroup/cpuset.cpus.effective", "/sys/devices/system/cpu/online"}) {
    std::ifstream file(path);
    std::string line;
    if (file && std::getline(file, line)) {
      auto cpus = parse_cpu_list(line);
      if (!cpus.empty()) return cpus;
    }
  }
  std::vector<int> cpus(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
  for (size_t i = 0; i < cpus.size(); ++i) cpus[i] = static_cast<int>(i);
  return cpus;
}

/// Physical cores among `cpus` (hyperthread siblings count once), as mpirun counts slots.
int physical_cores(const std::vector<int>& cpus) {
  std::set<std::pair<std::string, std::string>> cores;
  for (int cpu : cpus) {
    const std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::ifstream package(base + "physical_package_id"), core(base + "core_id");
    std::string package_id, core_id;
    if (!(package >> package_id) || !(core >> core_id)) return static_cast<int>(cpus.size());
    cores.emplace(package_id, core_id);
  }
  return std::max<int>(1, static_cast<int>(cores.size()));
}

/// {3} -> "core 3"; {0,1} -> "cores 0-1"; {0,1,4,5} -> "cores 0-1,4-5"; {} -> "none".
std::string describe_cpus(std::vector<int> cpus) {
  if (cpus.empty()) return "none";
  std::sort(cpus.begin(), cpus.end());
  // Built by appending only: `"literal" + std::to_string(...)` trips a false -Wrestrict in g++ 12.
  std::string text = cpus.size() == 1 ? "core " : "cores ";
  if (cpus.size() == 1) return text += std::to_string(cpus[0]);
  for (size_t i = 0; i < cpus.size();) {
    size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    if (i > 0) text += ",";
    text += std::to_string(cpus[i]);
    if (j > i) {
      text += '-';
      text += std::to_string(cpus[j]);
    }
    i = j + 1;
  }
  return text;
}

}  // namespace cclab::detail

namespace cclab {
namespace {

/// A positive integer from the environment, or 0 when unset or not a positive integer.
int positive_env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return 0;
  char* end = nullptr;
  const long number = std::strtol(value, &end, 10);
  return (*end == '\0' && number > 0 && number < (1L << 30)) ? static_cast<int>(number) : 0;
}

/// Slurm's SLURM_TASKS_PER_NODE ("2(x3),1": two tasks on each of three nodes, then one) for the
/// node SLURM_NODEID; 0 if unknown.
int slurm_tasks_on_this_node() {
  if (int per_node = positive_env("SLURM_NTASKS_PER_NODE")) return per_node;
  const char* spec = std::getenv("SLURM_TASKS_PER_NODE");
  const char* node_text = std::getenv("SLURM_NODEID");
  if (spec == nullptr || node_text == nullptr) return 0;
  long node = std::strtol(node_text, nullptr, 10);
  const char* at = spec;
  while (*at != '\0') {
    char* end = nullptr;
    const long tasks = std::strtol(at, &end, 10);
    if (end == at) return 0;
    long repeat = 1;
    if (end[0] == '(' && end[1] == 'x') {
      repeat = std::strtol(end + 2, &end, 10);
      if (*end != ')') return 0;
      ++end;
    }
    if (node < repeat) return static_cast<int>(tasks);
    node -= repeat;
    at = *end == ',' ? end + 1 : end;
  }
  return 0;
}

bool store_is_loopback() {
  const char* store = std::getenv("CCLAB_STORE");
  if (store == nullptr) return false;
  const std::string text = store;
  return text.rfind("127.", 0) == 0 || text.rfind("localhost:", 0) == 0 || text.rfind("[::1]:", 0) == 0;
}

/// How many ranks of this job share the host, for launchers that do not tell us directly;
/// 0 if unknown.
int env_launch_local_size() {
  if (int local = positive_env("CCLAB_LOCAL_SIZE")) return local;
  if (int local = slurm_tasks_on_this_node()) return local;
  // Every rank reaching the store over loopback means every rank is on this host.
  if (store_is_loopback()) {
    if (int world = positive_env("CCLAB_WORLD_SIZE")) return world;
    return positive_env("SLURM_NTASKS");
  }
  return 0;
}

Placement placement_from_affinity(int local_size) {
  const std::vector<int> host = detail::host_cpus();
  const std::vector<int> mine = detail::affinity_cpus();
  Placement placement;
  // Bound means someone narrowed our affinity below what the host (or container) offers.
  const bool bound = !mine.empty() && mine.size() < host.size();
  placement.binding = bound ? detail::describe_cpus(mine) : "none";
  const int ranks_here = std::max(1, local_size);
  placement.threads = bound ? static_cast<int>(mine.size())
                            : std::max<int>(1, static_cast<int>(host.size()) / ranks_here);
  placement.oversubscribed = ranks_here > static_cast<int>(host.size());
  return placement;
}

}  // namespace

Placement this_rank_placement() {
  const char* local_launch = std::getenv("CCLAB_LOCAL_LAUNCH");
  if (local_launch != nullptr && std::string(local_launch) == "1") {
    Placement placement;
    if (const char* binding = std::getenv("CCLAB_BINDING"); binding != nullptr && *binding != '\0')
      placement.binding = binding;
    placement.threads = std::max(1, positive_env("CCLAB_THREADS"));
    const char* oversubscribed = std::getenv("CCLAB_OVERSUBSCRIBED");
    placement.oversubscribed = oversubscribed != nullptr && std::string(oversubscribed) == "1";
    return placement;
  }
  // CCLAB_LOCAL_SIZE overrides mpirun's count where hosts share cores (containers on one machine).
  if (std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr) {
    const int local = positive_env("CCLAB_LOCAL_SIZE");
    return placement_from_affinity(local ? local : positive_env("OMPI_COMM_WORLD_LOCAL_SIZE"));
  }
  if (std::getenv("CCLAB_STORE") != nullptr) return placement_from_affinity(env_launch_local_size());
  return placement_from_affinity(1);
}

}  // namespace cclab
