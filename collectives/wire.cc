#include "cclab/wire.h"

#include <cstdio>
#include <set>
#include <sstream>

#include "cclab/comm.h"

namespace cclab {
namespace {

// A level's descriptions travel joined by '|', the levels by '\n'.
constexpr char kAlternatives = '|';

void add_alternatives(const std::string& text, std::set<std::string>& into) {
  std::stringstream stream(text);
  for (std::string item; std::getline(stream, item, kAlternatives);)
    if (!item.empty()) into.insert(item);
}

}  // namespace

std::string join_alternatives(const std::set<std::string>& descriptions) {
  std::string text;
  for (const std::string& description : descriptions) {
    if (!text.empty()) text += kAlternatives;
    text += description;
  }
  return text;
}

bool names_shared_memory(const std::string& level) {
  std::stringstream stream(level);
  // "sysv+cma", "posix+cma|tcp": transports are joined by '+', alternatives by '|'.
  for (std::string alternative; std::getline(stream, alternative, kAlternatives);) {
    std::stringstream parts(alternative);
    for (std::string part; std::getline(parts, part, '+');) {
      const std::string name = part.substr(part.rfind(':') + 1);  // "mpi:vader" -> "vader"
      for (const char* shared : {"posix", "sysv", "xpmem", "knem", "cma", "mm", "vader"})
        if (name == shared) return true;
    }
  }
  return false;
}

Wire job_wire(Comm& comm) {
  const std::vector<int>& node_of_rank = comm.topology().node_of_rank;
  const int me = comm.rank();
  std::set<std::string> intra, inter;
  for (int peer = 0; peer < comm.size(); ++peer) {
    if (peer == me) continue;
    const std::string wire = comm.transport().wire_to(peer);
    if (wire.empty()) continue;
    (node_of_rank[size_t(peer)] == node_of_rank[size_t(me)] ? intra : inter).insert(wire);
  }
  std::set<std::string> all_intra, all_inter;
  for (const std::string& levels : comm.allgather(join_alternatives(intra) + '\n' + join_alternatives(inter))) {
    const size_t newline = levels.find('\n');
    add_alternatives(levels.substr(0, newline), all_intra);
    if (newline != std::string::npos) add_alternatives(levels.substr(newline + 1), all_inter);
  }
  const Wire wire{join_alternatives(all_intra), join_alternatives(all_inter)};

  static bool warned = false;
  if (me == 0 && !warned && names_shared_memory(wire.inter)) {
    warned = true;
    std::fprintf(stderr,
                 "cclab: warning: ranks on different nodes reach each other through shared memory (%s), not a "
                 "network: their nodes share one kernel (--inter-transport ucx:tcp sends that traffic over TCP)\n",
                 wire.inter.c_str());
  }
  return wire;
}

std::string profile_wire_mismatch(const Wire& profile_wire, const Wire& job, const std::string& source) {
  const bool intra_differs = !profile_wire.intra.empty() && !job.intra.empty() && profile_wire.intra != job.intra;
  const bool inter_differs = !profile_wire.inter.empty() && !job.inter.empty() && profile_wire.inter != job.inter;
  if (!intra_differs && !inter_differs) return {};
  std::string text = "cclab: warning: the profile ";
  text += source;
  text += " was fitted on wire ";
  text += profile_wire.short_text();
  text += ", this job runs on ";
  text += job.short_text();
  text += ": its predictions describe the other wire (cclab bench p2p --fit on this job fits one for it)";
  return text;
}

}  // namespace cclab
