// Out-of-band exchange between ranks: used before any transport exists (addresses, argument
// checks) and for the few collective control operations the drivers need (gathering timings).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cclab/deadline.h"

namespace cclab {

class Bootstrap {
 public:
  virtual ~Bootstrap() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// Every rank contributes `mine`; every rank gets all contributions in rank order.
  virtual std::vector<std::string> allgather(const std::string& mine) = 0;
  virtual void barrier() { allgather(std::string()); }
  /// "local" (cclab -n), "mpi" (mpirun), "env" (CCLAB_* or Slurm variables), "threads" (ranks as
  /// threads of one process: device-loopback, tests).
  virtual std::string launcher() const = 0;
};

}  // namespace cclab
