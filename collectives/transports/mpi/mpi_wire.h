// What Open MPI carries a job's messages on, for the wire of `--impl mpi` rows and of
// `--transport mpi` (cclab/wire.h). Open MPI names no transport per peer, so this applies its
// selection to the components it has open after MPI_Init, as its MPI_T control variables show
// (a component's variables exist while it is open): with the ob1 PML, a peer on the same host
// goes through the shared-memory BTL (vader, with its single-copy mechanism: "mpi:vader+cma")
// and a peer on another host through the one network BTL open ("mpi:tcp"). Where the hardware
// decides (UCX's PML open, or several network BTLs), it says "mpi" and no more.
#pragma once

#include <string>
#include <vector>

#include "cclab/wire.h"

namespace cclab {

class Comm;

/// The components Open MPI has open.
struct OpenMpiSelection {
  bool ucx_pml = false;           // UCX's PML, which takes over wherever it finds a network it supports
  std::vector<std::string> btls;  // "self", "vader", "tcp", ...
  std::string single_copy;        // vader's single-copy mechanism: "cma", "xpmem", "none", ""
};

/// The wire `selection` gives two ranks on the same host, or on different hosts.
std::string open_mpi_wire(const OpenMpiSelection& selection, bool same_host);

/// The same with this process's Open MPI settings ("mpi" where they cannot be read). MPI must be
/// initialized.
std::string open_mpi_wire(bool same_host);

/// The wire of Open MPI's messages at each level of `comm`'s topology, from its ranks' host names
/// (virtual nodes on one host still talk through shared memory). Not collective.
Wire open_mpi_job_wire(const Comm& comm);

}  // namespace cclab
