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

// A control variable's value as text (strings as they are, enumerations by their item's name);
// nullopt when Open MPI has no such variable.
std::optional<std::string> read_cvar(const char* name) {
  int index = -1;
  if (MPI_T_cvar_get_index(name, &index) != MPI_SUCCESS) return std::nullopt;
  char info_name[256], description[1024];
  int name_length = sizeof info_name, description_length = sizeof description, verbosity, binding, scope;
  MPI_Datatype type;
  MPI_T_enum enumeration;
  if (MPI_T_cvar_get_info(index, info_name, &name_length, &verbosity, &type, &enumeration, description,
                          &description_length, &binding, &scope) != MPI_SUCCESS)
    return std::nullopt;
  MPI_T_cvar_handle handle;
  int count = 0;
  if (MPI_T_cvar_handle_alloc(index, nullptr, &handle, &count) != MPI_SUCCESS) return std::nullopt;
  std::string text;
  if (type == MPI_CHAR) {
    std::vector<char> value(size_t(std::max(count, 1)) + 1, '\0');
    if (MPI_T_cvar_read(handle, value.data()) == MPI_SUCCESS) text = value.data();
  } else if (type == MPI_INT && enumeration != MPI_T_ENUM_NULL) {
    int value = 0, items = 0, item_value = 0;
    char enum_name[256], item_name[256];
    int enum_name_length = sizeof enum_name;
    if (MPI_T_cvar_read(handle, &value) == MPI_SUCCESS &&
        MPI_T_enum_get_info(enumeration, &items, enum_name, &enum_name_length) == MPI_SUCCESS)
      for (int item = 0; item < items; ++item) {
        int item_name_length = sizeof item_name;
        if (MPI_T_enum_get_item(enumeration, item, &item_value, item_name, &item_name_length) == MPI_SUCCESS &&
            item_value == value)
          text = item_name;
      }
  }
  MPI_T_cvar_handle_free(&handle);
  return text;
}

// This process's selection; nullopt when MPI_T shows no PML at all (not Open MPI).
const std::optional<OpenMpiSelection>& this_selection() {
  static const std::optional<OpenMpiSelection> read = []() -> std::optional<OpenMpiSelection> {
    int provided = 0;
    if (MPI_T_init_thread(MPI_THREAD_SINGLE, &provided) != MPI_SUCCESS) return std::nullopt;
    std::optional<OpenMpiSelection> made;
    if (read_cvar("pml")) {
      made.emplace();
      made->ucx_pml = read_cvar("pml_ucx_priority").has_value();
      for (const std::string& btl : kBtls)
        if (read_cvar(("btl_" + btl + "_bandwidth").c_str())) made->btls.push_back(btl);
      made->single_copy = read_cvar("btl_vader_single_copy_mechanism").value_or("");
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
