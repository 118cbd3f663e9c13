// MPI transport (DESIGN 3.2): MPI_Isend/MPI_Irecv on a private duplicate of MPI_COMM_WORLD, a
// second host transport and what runs under mpirun without UCX. Needs ranks started by mpirun.
//
// Tags: MPI matches on (source, tag, communicator), so the sender is implicit; the 48-bit cclab tag
// (sequence:24 | step:24) is folded into MPI's 31 bits as (sequence mod 128 : 7 | step : 24). Calls
// more than 127 sequence numbers apart are never in flight together.
//
// Progress: MPI progresses inside MPI_Test, which complete() calls; progress() makes no MPI call, so
// Comm::allgather may run the MPI bootstrap on its helper thread meanwhile (MPI_THREAD_SERIALIZED).
#pragma once

#include <mpi.h>

#include <string>
#include <vector>

#include "cclab/transport.h"

namespace cclab {

class MpiTransport : public Transport {
 public:
  /// Collective over MPI_COMM_WORLD (duplicates it). UsageError when MPI is not initialized.
  /// `host_names`: every rank's host, for the wire.
  explicit MpiTransport(std::vector<std::string> host_names);
  ~MpiTransport() override;

  std::string name() const override { return "mpi"; }
  /// Open MPI's BTL for that peer: "mpi:vader+cma" on this host, "mpi:tcp" on another (mpi_wire.h).
  std::string wire_to(int peer) const override;
  RequestPtr send(int peer, const void* buffer, size_t bytes, uint64_t tag) override;
  RequestPtr recv(int peer, void* buffer, size_t bytes, uint64_t tag) override;
  bool progress() override { return false; }

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
  std::vector<std::string> host_names_;
};

}  // namespace cclab
