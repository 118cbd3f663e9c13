#include "transports/mpi/mpi_wire.h"

#include <mpi.h>

#include <algorithm>
#include <optional>
#include <set>

#include "cclab/comm.h"

namespace cclab {
namespace {

// Open MPI 4's BTLs, and those of them that join hosts.
const std::vector<std::string> kNetworkBtls = {"tcp", "openib", "uct", "ofi", "usnic", "ugni", "portals4"};
const std::vector<std::string> kBtls = {"self", "vader", "sm",    "smcuda", "tcp",     "openib",
                                        "uct",  "ofi",   "usnic", "ugni",   "portals4"};

// Whether Open MPI has a control variable of that name: a component's exist while it is open.
bool has_cvar(const char* name) {
  int index = -1;
  return MPI_T_cvar_get_index(name, &index) == MPI_SUCCESS;
}

// The name of an enumerated control variable's value ("cma"); "" when there is none.
std::string enum_cvar_text(const char* name) {
  int index = -1;
  if (MPI_T_cvar_get_index(name, &index) != MPI_SUCCESS) return "";
  char info_name[256], description[1024];
  int name_length = sizeof info_name, description_length = sizeof description, verbosity, binding, scope;
  MPI_Datatype type;
  MPI_T_enum enumeration;
  if (MPI_T_cvar_get_info(index, info_name, &name_length, &verbosity, &type, &enumeration, description,
                          &description_length, &binding, &scope) != MPI_SUCCESS ||
      type != MPI_INT || enumeration == MPI_T_ENUM_NULL)
    return "";
  MPI_T_cvar_handle handle;
  int count = 0, value = 0;
  if (MPI_T_cvar_handle_alloc(index, nullptr, &handle, &count) != MPI_SUCCESS) return "";
  const bool read = MPI_T_cvar_read(handle, &value) == MPI_SUCCESS;
  MPI_T_cvar_handle_free(&handle);
  int items = 0;
  char enum_name[256];
  int enum_name_length = sizeof enum_name;
  if (!read || MPI_T_enum_get_info(enumeration, &items, enum_name, &enum_name_length) != MPI_SUCCESS) return "";
  for (int item = 0; item < items; ++item) {
    int item_value = 0;
    char item_name[256];
    int item_name_length = sizeof item_name;
    if (MPI_T_enum_get_item(enumeration, item, &item_value, item_name, &item_name_length) == MPI_SUCCESS &&
        item_value == value)
      return item_name;
  }
  return "";
}

// This process's selection; nullopt when MPI_T shows no PML at all (not Open MPI).
const std::optional<OpenMpiSelection>& this_selection() {
  static const std::optional<OpenMpiSelection> read = []() -> std::optional<OpenMpiSelection> {
    int provided = 0;
    if (MPI_T_init_thread(MPI_THREAD_SINGLE, &provided) != MPI_SUCCESS) return std::nullopt;
    std::optional<OpenMpiSelection> made;
    if (has_cvar("pml")) {
      made.emplace();
      made->ucx_pml = has_cvar("pml_ucx_priority");
      for (const std::string& btl : kBtls)
        if (has_cvar(("btl_" + btl + "_bandwidth").c_str())) made->btls.push_back(btl);
      made->single_copy = enum_cvar_text("btl_vader_single_copy_mechanism");
    }
    MPI_T_finalize();
    return made;
  }();
  return read;
}

}  // namespace

std::string open_mpi_wire(const OpenMpiSelection& selection, bool same_host) {
  if (selection.ucx_pml) return "mpi";
  auto open = [&](const std::string& btl) {
    return std::find(selection.btls.begin(), selection.btls.end(), btl) != selection.btls.end();
  };
  if (same_host && (open("vader") || open("sm"))) {
    const std::string& copy = selection.single_copy;
    return copy.empty() || copy == "none" ? "mpi:vader" : "mpi:vader+" + copy;
  }
  std::vector<std::string> networks;
  for (const std::string& btl : kNetworkBtls)
    if (open(btl)) networks.push_back(btl);
  return networks.size() == 1 ? "mpi:" + networks.front() : "mpi";
}

std::string open_mpi_wire(bool same_host) {
  const std::optional<OpenMpiSelection>& selection = this_selection();
  return selection ? open_mpi_wire(*selection, same_host) : "mpi";
}

Wire open_mpi_job_wire(const Comm& comm) {
  const std::vector<std::string>& hosts = comm.host_names();
  const std::vector<int>& node_of_rank = comm.topology().node_of_rank;
  std::set<std::string> intra, inter;
  for (size_t a = 0; a < hosts.size(); ++a)
    for (size_t b = a + 1; b < hosts.size(); ++b)
      (node_of_rank[a] == node_of_rank[b] ? intra : inter).insert(open_mpi_wire(hosts[a] == hosts[b]));
  return {join_alternatives(intra), join_alternatives(inter)};
}

}  // namespace cclab
