// Bootstrap for ranks started by mpirun: rank and size come from MPI_COMM_WORLD, and the
// out-of-band exchange runs over MPI itself.
#pragma once

// Only MPI's C API: Open MPI's mpi.h otherwise drags in its deprecated C++ bindings, whose symbols
// live in libmpi_cxx, which cclab does not link (it links MPI::MPI_C).
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <string>
#include <vector>

#include "cclab/bootstrap.h"

namespace cclab {

/// Initializes MPI (unless someone already did) and finalizes it on destruction if it initialized
/// it. It must outlive every other MPI user in the process (the MPI transport, the MPI vendor
/// allreduce), since MPI_Finalize ends MPI for all of them.
///
/// Its own collectives run on a private duplicate of MPI_COMM_WORLD, so they never interleave with
/// collectives that other code issues on MPI_COMM_WORLD while this bootstrap is alive.
class MpiBootstrap : public Bootstrap {
 public:
  /// `timeout_s` bounds every allgather. Asks for MPI_THREAD_SERIALIZED: any thread may call MPI,
  /// one at a time, which is all cclab needs and avoids THREAD_MULTIPLE's locking in the timed
  /// paths of vendor MPI benchmarks.
  explicit MpiBootstrap(double timeout_s);
  ~MpiBootstrap() override;
  MpiBootstrap(const MpiBootstrap&) = delete;
  MpiBootstrap& operator=(const MpiBootstrap&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  /// Nonblocking MPI_Iallgather of the lengths, then MPI_Iallgatherv of the bytes, each polled
  /// until the deadline (MPI's blocking calls cannot be bounded).
  std::vector<std::string> allgather(const std::string& mine) override;
  std::string launcher() const override { return "mpi"; }

  /// The thread level MPI granted (MPI_THREAD_SINGLE ... MPI_THREAD_MULTIPLE).
  int thread_level() const { return thread_level_; }

 private:
  void wait(MPI_Request& request, const char* what);

  double timeout_s_;
  bool initialized_here_ = false;
  // After a timed-out collective a request is still pending, and MPI_Finalize would block on it
  // forever; the destructor then leaves MPI unfinalized and lets mpirun tear the job down.
  bool abandoned_request_ = false;
  int thread_level_ = MPI_THREAD_SINGLE;
  int rank_ = 0;
  int size_ = 1;
  MPI_Comm comm_ = MPI_COMM_NULL;
};

}  // namespace cclab
