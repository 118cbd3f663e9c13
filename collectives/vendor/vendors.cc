// The vendor reference implementations by name.
#include "cclab/implementation.h"

namespace cclab {

std::unique_ptr<Implementation> make_mpi_implementation(Collective collective, Comm& comm);
std::unique_ptr<Implementation> make_gloo_implementation(Collective collective, const std::string& name, Comm& comm);
std::vector<std::string> gloo_implementation_names(Collective collective);

std::unique_ptr<Implementation> make_vendor_implementation(Collective collective, const std::string& name,
                                                           Comm& comm) {
  if (name == "mpi") return make_mpi_implementation(collective, comm);
  return make_gloo_implementation(collective, name, comm);
}

std::vector<std::string> vendor_implementation_names(Collective collective) {
  std::vector<std::string> names = {"mpi"};
  for (const std::string& name : gloo_implementation_names(collective)) names.push_back(name);
  return names;
}

bool needs_mpi_launch(const std::string& name) { return name == "mpi"; }

}  // namespace cclab
