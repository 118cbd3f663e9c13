#include "transports/mpi/mpi_transport.h"

#include <climits>
#include <string>
#include <utility>

#include "cclab/error.h"
#include "transports/mpi/mpi_wire.h"

namespace cclab {
namespace {

int world_rank() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) throw UsageError("transport mpi needs ranks started by mpirun (cclab -n N uses mpirun for it)");
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

int world_size() {
  int size = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

int mpi_tag(uint64_t tag) { return int((((tag >> 24) & 0x7F) << 24) | (tag & 0xFFFFFF)); }

int mpi_count(size_t bytes) {
  if (bytes > size_t(INT_MAX))
    throw Error("mpi transport: a message of " + std::to_string(bytes) + " bytes is too large");
  return int(bytes);
}

class MpiRequest : public Request {
 public:
  MpiRequest(int peer, size_t bytes, bool is_send) : Request(peer, bytes, is_send) {}
  ~MpiRequest() override {
    if (request == MPI_REQUEST_NULL) return;
    // Abandoned (an error path): a receive can be cancelled; a send is left to MPI_Finalize.
    if (!is_send) MPI_Cancel(&request);
    MPI_Request_free(&request);
  }
  bool complete() override {
    if (request == MPI_REQUEST_NULL) return true;
    int done = 0;
    MPI_Status status;
    if (MPI_Test(&request, &done, &status) != MPI_SUCCESS)
      throw Error("mpi transport: a transfer with rank " + std::to_string(peer) + " failed");
    if (done && !is_send) {
      int received = 0;
      MPI_Get_count(&status, MPI_BYTE, &received);
      if (size_t(received) != bytes)
        throw Error("mpi transport: expected " + std::to_string(bytes) + " bytes from rank " + std::to_string(peer) +
                    ", got " + std::to_string(received));
    }
    return done != 0;
  }
  MPI_Request request = MPI_REQUEST_NULL;
};

}  // namespace

MpiTransport::MpiTransport(std::vector<std::string> host_names)
    : Transport(world_rank(), world_size()), host_names_(std::move(host_names)) {
  MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
}

std::string MpiTransport::wire_to(int peer) const {
  return open_mpi_wire(host_names_.at(size_t(peer)) == host_names_.at(size_t(rank())));
}

MpiTransport::~MpiTransport() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

RequestPtr MpiTransport::send(int peer, const void* buffer, size_t bytes, uint64_t tag) {
  check_peer(peer);
  count_send(peer, bytes);
  auto request = std::make_unique<MpiRequest>(peer, bytes, true);
  MPI_Isend(buffer, mpi_count(bytes), MPI_BYTE, peer, mpi_tag(tag), comm_, &request->request);
  return request;
}

RequestPtr MpiTransport::recv(int peer, void* buffer, size_t bytes, uint64_t tag) {
  check_peer(peer);
  count_receive(peer, bytes);
  auto request = std::make_unique<MpiRequest>(peer, bytes, false);
  MPI_Irecv(buffer, mpi_count(bytes), MPI_BYTE, peer, mpi_tag(tag), comm_, &request->request);
  return request;
}

}  // namespace cclab
