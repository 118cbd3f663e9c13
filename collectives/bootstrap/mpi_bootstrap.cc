#include "bootstrap/mpi_bootstrap.h"

#include <climits>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "cclab/deadline.h"
#include "cclab/error.h"
#include "cclab/launch.h"

namespace cclab {
namespace {

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(rc, text, &length);
  throw Error(std::string(what) + " failed: " + std::string(text, length));
}

const char* env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : nullptr;
}

/// In a one-node job Open MPI's TCP BTL would only add listening sockets on every address of the
/// host (it binds 0.0.0.0 and ::): keep the ranks to shared memory, unless the user chose BTLs.
/// Open MPI reads OMPI_MCA_* from the environment in MPI_Init, so this must run before it.
void keep_one_node_job_off_tcp() {
  const char* size = env("OMPI_COMM_WORLD_SIZE");
  const char* local_size = env("OMPI_COMM_WORLD_LOCAL_SIZE");
  if (size == nullptr || local_size == nullptr || std::string(size) != local_size) return;
  if (env("OMPI_MCA_btl") == nullptr) setenv("OMPI_MCA_btl", "self,vader", 1);
}

}  // namespace

MpiBootstrap::MpiBootstrap(double timeout_s) : timeout_s_(timeout_s) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) {
    MPI_Query_thread(&thread_level_);
  } else {
    keep_one_node_job_off_tcp();
    // MPI_Init_thread's failures cannot be caught (the default handler aborts), but say what we did.
    check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &thread_level_), "MPI_Init_thread");
    initialized_here_ = true;
  }
  try {
    check(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
    // Errors on our communicator come back as codes, which become exceptions with MPI's text.
    check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
  } catch (...) {
    if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
    if (initialized_here_) MPI_Finalize();
    throw;
  }
}

MpiBootstrap::~MpiBootstrap() {
  if (abandoned_request_) return;
  if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (initialized_here_ && !finalized) MPI_Finalize();
}

void MpiBootstrap::wait(MPI_Request& request, const char* what) {
  const Deadline deadline = Deadline::after(timeout_s_);
  Backoff backoff(this_rank_placement().oversubscribed);
  for (;;) {
    int done = 0;
    check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), what);
    if (done) return;
    if (backoff.expired(deadline)) {
      abandoned_request_ = true;
      // A collective does not tell which rank is missing; mpirun's report of the rank that exited
      // or hung is the place to look.
      throw TimeoutError(std::string("MPI bootstrap ") + what + " timed out after " + format_seconds(timeout_s_) +
                         " s: not every rank arrived (MPI cannot say which)");
    }
    backoff.idle();
  }
}

std::vector<std::string> MpiBootstrap::allgather(const std::string& mine) {
  if (mine.size() > static_cast<size_t>(INT_MAX)) throw Error("bootstrap allgather: contribution over 2 GiB");
  // Lengths first, so every rank can size the receive buffer and the displacements.
  const int my_length = static_cast<int>(mine.size());
  std::vector<int> lengths(size_);
  MPI_Request request = MPI_REQUEST_NULL;
  check(MPI_Iallgather(&my_length, 1, MPI_INT, lengths.data(), 1, MPI_INT, comm_, &request), "MPI_Iallgather");
  wait(request, "allgather of lengths");

  std::vector<int> displacements(size_);
  int64_t total = 0;
  for (int r = 0; r < size_; ++r) {
    if (total > INT_MAX) break;
    displacements[r] = static_cast<int>(total);
    total += lengths[r];
  }
  // MPI counts and displacements are ints.
  if (total > INT_MAX) throw Error("bootstrap allgather: contributions add up to more than 2 GiB");
  std::string gathered(static_cast<size_t>(total), '\0');
  check(MPI_Iallgatherv(mine.data(), my_length, MPI_CHAR, gathered.data(), lengths.data(), displacements.data(),
                        MPI_CHAR, comm_, &request),
        "MPI_Iallgatherv");
  wait(request, "allgather");

  std::vector<std::string> result(size_);
  for (int r = 0; r < size_; ++r) result[r] = gathered.substr(displacements[r], lengths[r]);
  return result;
}

}  // namespace cclab
